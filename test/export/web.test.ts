/**
 * `pythia export web` end to end in headless Chromium (Debian's chromium, driven by puppeteer-core):
 * the page, served from a loopback server this test starts, tokenises a typed prompt, runs two
 * checkpoints with onnxruntime-web, and must show our tokenizer's prompt ids, our `generate`'s
 * greedy tokens, its seeded samples, and our probabilities; no request leaves the page's origin.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { exportWeb } from '../../src/export/web.js';
import { ActivationRunner } from '../../src/model/activations.js';
import { type Checkpoint, loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import { Decoder } from '../../src/model/decoder.js';
import { type GenerateOptions, generate } from '../../src/model/generate.js';
import { MASK_VALUE } from '../../src/model/gpt-neox.js';
import { ATTENTION_MAX_TOKENS } from '../../src/results/attention-study.js';
import { Prng } from '../../src/util/prng.js';
import { fixtureDir } from '../support/paths.js';
import { trainedTokenizer } from './support.js';

const CHROMIUM = '/usr/bin/chromium';

/** The little of the DOM these page callbacks touch (the project compiles without the DOM library); casts only, as page callbacks run in the browser. */
interface El {
  dataset: Record<string, string | undefined>;
  value: string;
  textContent: string | null;
  querySelector(selector: string): El;
  querySelectorAll(selector: string): Iterable<El>;
}

const skip = existsSync(CHROMIUM) ? false : `no ${CHROMIUM} (Debian's chromium package; .ci/run installs it)`;

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

/** A static file server on 127.0.0.1 for `root`. */
async function serve(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    const file = path.endsWith('/') ? join(path, 'index.html') : path;
    if (!file.startsWith(root) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${address.port}/` };
}

async function ours(checkpoint: Checkpoint, prompt: number[], options: GenerateOptions): Promise<number[]> {
  const decoder = await Decoder.create(checkpoint.config, checkpoint.params, { threads: 1 });
  try {
    return (await generate(decoder, [prompt], options))[0]!.slice(prompt.length);
  } finally {
    await decoder.release();
  }
}

interface Column {
  model: string;
  prompt: number[];
  greedy: number[];
  sampled: number[];
  greedyP: number[];
  /** The same tokens' probabilities under the other checkpoint. */
  otherP: number[];
}

/** Next-token probabilities after the whole prompt, from our decoder. */
async function nextTokenProbabilities(checkpoint: Checkpoint, ids: readonly number[]): Promise<Float64Array> {
  const decoder = await Decoder.create(checkpoint.config, checkpoint.params, { threads: 1 });
  const n = ids.length;
  const bias = new Float32Array(n * n).map((_, k) => (k % n > Math.floor(k / n) ? MASK_VALUE : 0));
  const step = await decoder.step(
    BigInt64Array.from(ids, BigInt),
    BigInt64Array.from(ids, (_, t) => BigInt(t)),
    bias,
    decoder.emptyCache(1),
    1,
  );
  await decoder.release();
  const max = Math.max(...step.logits);
  const e = Float64Array.from(step.logits, (l) => Math.exp(l - max));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / total);
}

function assertProbability(shown: number, expected: number, label: string): void {
  assert.ok(Math.abs(shown - expected) <= 1e-4 * expected, `${label}: ${shown} shown, ${expected} ours`);
}

async function columns(page: Page): Promise<Column[]> {
  return page.$$eval('.column', (cs) =>
    cs.map((c) => {
      const ids = (mode: string): number[] => {
        const raw = (c as unknown as El).querySelector(`.continuation[data-mode=${mode}]`).dataset.ids!;
        return raw === '' ? [] : raw.split(',').map(Number);
      };
      return {
        model: (c as unknown as El).dataset.model!,
        prompt: (c as unknown as El).querySelector('.prompt-ids').dataset.ids!.split(',').map(Number),
        greedy: ids('greedy'),
        sampled: ids('sampled'),
        greedyP: [...(c as unknown as El).querySelectorAll('.continuation[data-mode=greedy] .token')].map((t) =>
          Number(t.dataset.p),
        ),
        otherP: [...(c as unknown as El).querySelectorAll('.continuation[data-mode=greedy] .token')].map((t) =>
          Number(t.dataset.otherP),
        ),
      };
    }),
  );
}

describe('pythia export web in headless Chromium', () => {
  let work: string;
  let server: Server;
  let url: string;
  let browser: Browser;
  const checkpoints: Checkpoint[] = [];
  let tokenizerPath: string;

  before(async () => {
    if (skip) return;
    work = mkdtempSync(join(tmpdir(), 'pythia-web-'));
    tokenizerPath = await trainedTokenizer(join(work, 'tokenizer.json'), 1024);
    const first = loadCheckpoint(join(fixtureDir('fp16-long'), 'model'));
    // A second checkpoint of the same architecture, as another step would be: a perturbed LM head and first attention.
    const second = join(work, 'perturbed', 'step2');
    const rng = new Prng(5);
    const params = new Map(first.params);
    params.set(
      'embed_out.weight',
      first.params.get('embed_out.weight')!.map((w) => w + 0.05 * rng.normal()),
    );
    const qkv = 'gpt_neox.layers.0.attention.query_key_value.weight';
    params.set(
      qkv,
      first.params.get(qkv)!.map((w) => w + 0.05 * rng.normal()),
    );
    await saveCheckpoint(second, first.config, params, { tokenizerPath });
    checkpoints.push(first, loadCheckpoint(second));
    await exportWeb([first.dir, second], join(work, 'page'), { tokenizerPath });
    ({ server, url } = await serve(join(work, 'page')));
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('two checkpoints on a typed prompt: our prompt ids, greedy tokens, seeded samples and probabilities', {
    skip,
  }, async () => {
    const page = await browser.newPage();
    const foreign: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(url)) foreign.push(r.url());
    });
    await page.goto(url);
    await page.waitForSelector('#status[data-state=ready], #status[data-state=error]');
    const options = await page.$$eval('#model-a option', (os) => os.map((o) => (o as unknown as El).value));
    assert.deepEqual(options, ['fp16-long-model', 'perturbed-step2']);
    const prompt = 'Q: What is 12 plus 7? A:';
    await page.$eval('#prompt', (e) => ((e as unknown as El).value = ''));
    await page.type('#prompt', prompt);
    for (const [id, value] of [
      ['#max-new-tokens', '12'],
      ['#temperature', '0.8'],
      ['#seed', '3'],
    ]) {
      await page.$eval(id!, (e) => ((e as unknown as El).value = ''));
      await page.type(id!, value!);
    }
    await page.click('#run');
    await page.waitForSelector('#status[data-state=done], #status[data-state=error]', { timeout: 300_000 });
    assert.equal(
      await page.$eval('#status', (e) => (e as unknown as El).dataset.state),
      'done',
      await page.$eval('#status', (e) => e.textContent),
    );

    const ids = await (await loadTokenizer(tokenizerPath)).encode(prompt);
    const shown = await columns(page);
    assert.deepEqual(
      shown.map((c) => c.model),
      ['fp16-long-model', 'perturbed-step2'],
    );
    for (const [i, column] of shown.entries()) {
      const checkpoint = checkpoints[i]!;
      const eosTokenId = checkpoint.config.eosTokenId;
      assert.deepEqual(column.prompt, ids, 'the prompt tokenised as our tokenizer does');
      assert.deepEqual(
        column.greedy,
        await ours(checkpoint, ids, { maxNewTokens: 12, eosTokenId }),
        `${column.model}: greedy`,
      );
      assert.deepEqual(
        column.sampled,
        await ours(checkpoint, ids, { maxNewTokens: 12, eosTokenId, temperature: 0.8, seed: 3 }),
        `${column.model}: sampled`,
      );
    }
    // The first greedy token's probability under its own checkpoint and under the other one.
    const probabilities = await Promise.all(checkpoints.map((c) => nextTokenProbabilities(c, ids)));
    for (const [i, column] of shown.entries()) {
      const first = column.greedy[0]!;
      assertProbability(column.greedyP[0]!, probabilities[i]![first]!, `${column.model}: p`);
      assertProbability(column.otherP[0]!, probabilities[1 - i]![first]!, `${column.model}: p under the other`);
    }
    assert.notDeepEqual(shown[0]!.greedy, shown[1]!.greedy, 'the two checkpoints differ');
    assert.deepEqual(foreign, [], 'requests outside the page');
    await page.close();
  });

  test("a typed text's attention: every head's pattern, live, is our ActivationRunner's within 1e-5, at each checkpoint", {
    skip,
  }, async () => {
    const page = await browser.newPage();
    const foreign: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(url)) foreign.push(r.url());
    });
    page.on('pageerror', (e) => errors.push(e instanceof Error ? e.message : String(e)));
    await page.goto(url);
    await page.waitForSelector('#status[data-state=ready], #status[data-state=error]');
    const text = 'Q: What is 12 plus 7? A: 19. Q: What is 12 plus 7? A: 19. Q: What is 12 plus 7? A: 19.';
    await page.$eval('#attention-text', (e) => ((e as unknown as El).value = ''));
    await page.type('#attention-text', text);
    await page.click('#attention-run');
    const all = await (await loadTokenizer(tokenizerPath)).encode(text);
    assert.ok(all.length > ATTENTION_MAX_TOKENS, 'the text is cut to the tokens the study reads');
    const ids = all.slice(0, ATTENTION_MAX_TOKENS);
    const n = ids.length;
    const patterns: number[][] = [];
    for (const [i, size] of ['fp16-long', 'perturbed'].entries()) {
      if (i > 0) await page.select('#attention .attn-size', size);
      await page.waitForFunction(
        `(() => { const root = document.getElementById('attention'); const run = root.pythiaAttention && root.pythiaAttention.run;
          return root.dataset.state === 'error' || (root.dataset.state === 'done' && run && run.size === ${JSON.stringify(size)}); })()`,
        { timeout: 120_000 },
      );
      assert.equal(
        await page.$eval('#attention', (e) => (e as unknown as El).dataset.state),
        'done',
        await page.$eval('#attention .attn-status', (e) => e.textContent),
      );
      const shown = await page.$eval('#attention', (e) => {
        const run = (e as unknown as { pythiaAttention: { run: Record<string, unknown> } }).pythiaAttention.run;
        return {
          ids: run.ids as number[],
          layers: run.layers as number,
          heads: run.heads as number,
          weights: Array.from(run.weights as ArrayLike<number>),
        };
      });
      assert.deepEqual(shown.ids, ids, `${size}: the text tokenised as our tokenizer does`);
      const checkpoint = checkpoints[i]!;
      const { numLayers, numHeads } = checkpoint.config;
      assert.deepEqual([shown.layers, shown.heads], [numLayers, numHeads]);
      const runner = new ActivationRunner(checkpoint.config, checkpoint.params, { threads: 1 });
      const { cache } = await runner.run(BigInt64Array.from(ids, BigInt), 1, { names: ['blocks.*.attn.hook_pattern'] });
      await runner.release();
      let worst = 0;
      for (let l = 0; l < numLayers; l++) {
        const ours = cache.get(`blocks.${l}.attn.hook_pattern`)!.data;
        for (let k = 0; k < ours.length; k++)
          worst = Math.max(worst, Math.abs(shown.weights[l * numHeads * n * n + k]! - ours[k]!));
      }
      assert.ok(worst <= 1e-5, `${size}: max |page − ours| ${worst}`);
      patterns.push(shown.weights);

      // What a reader sees for one head and token: the same weights under the tokens.
      const [layer, head, dest] = [numLayers - 1, numHeads - 1, n - 3];
      await page.click(`#attention .attn-head[data-layer="${layer}"][data-head="${head}"]`);
      await page.click(`#attention .attn-token[data-position="${dest}"]`);
      const weights = await page.$$eval('#attention .attn-token', (ts) =>
        ts.map((t) => Number((t as unknown as El).dataset.weight)),
      );
      const ours = cache.get(`blocks.${layer}.attn.hook_pattern`)!.data;
      for (let src = 0; src < n; src++) {
        const expected = src <= dest ? ours[(head * n + dest) * n + src]! : 0;
        assert.ok(
          Math.abs(weights[src]! - expected) <= 1e-5,
          `${size}: token ${src} shows ${weights[src]}, ours ${expected}`,
        );
      }
    }
    assert.notDeepEqual(patterns[0], patterns[1], 'the two checkpoints attend differently');
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, [], 'requests outside the page');
    await page.close();
  });

  test('opened from file:// the page says to serve it over HTTP', { skip }, async () => {
    const page = await browser.newPage();
    await page.goto(pathToFileURL(join(work, 'page', 'index.html')).href);
    const status = await page.$eval('#status', (e) => ({
      state: (e as unknown as El).dataset.state,
      text: e.textContent ?? '',
    }));
    assert.equal(status.state, 'error');
    assert.match(status.text, /serve this folder over HTTP/);
    await page.close();
  });
});
