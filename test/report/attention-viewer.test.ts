/**
 * The report's attention viewer in headless Chromium: attention studies of two sizes (one at two
 * steps) recorded into a database, the report written from it, and the page must show, for a size,
 * step, head and token picked as a reader would, the weights stored in the database, with no
 * request beyond the page itself and no error; without JavaScript it says it needs it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import type { CheckpointRef } from '../../src/eval/checkpoints.js';
import { parameterShapes } from '../../src/model/config.js';
import { writeReport } from '../../src/report/report.js';
import { recordAttention } from '../../src/results/attention-study.js';
import { ResultsStore } from '../../src/results/store.js';
import { initParameters } from '../../src/train/init.js';
import { makeWorld } from '../eval/support.js';
import { chromiumMissing, launch, openReport } from './browser.js';

const skip = chromiumMissing();
const TEXT = 'The cat sat on the mat. The cat sat on the mat.';

/** The little of the DOM these page callbacks touch (the project compiles without the DOM library). */
interface El {
  dataset: Record<string, string | undefined>;
  value: string;
  textContent: string | null;
  querySelector(selector: string): El | null;
}

interface ShownToken {
  position: number;
  text: string;
  weight: number;
  written: string;
}

async function shownTokens(page: Page): Promise<ShownToken[]> {
  return page.$$eval('#attention-viewer .attn-token', (ts) =>
    ts.map((t) => {
      const e = t as unknown as El;
      return {
        position: Number(e.dataset.position),
        text: e.querySelector('b')!.textContent ?? '',
        weight: Number(e.dataset.weight),
        written: e.querySelector('small')!.textContent ?? '',
      };
    }),
  );
}

describe('the attention viewer of the report in headless Chromium', () => {
  let work: string;
  let db: string;
  let html: string;
  let browser: Browser;

  before(async () => {
    if (skip) return;
    work = mkdtempSync(join(tmpdir(), 'pythia-attention-report-'));
    const world = await makeWorld(work);
    db = join(work, 'results.duckdb');
    const store = await ResultsStore.open(db);
    const context = { runtime: { threads: 1 }, device: 'cpu', tokenizerSha256: 't'.repeat(64) };
    try {
      for (const [model, step, seed] of [
        ['tiny-a', 1, 1],
        ['tiny-a', 2, 2],
        ['tiny-b', 1, 3],
      ] as const) {
        const ref: CheckpointRef = { model, step, dir: join(work, model), tokens: null };
        // Small weights, so that heads spread their attention over several tokens.
        const params = initParameters(
          parameterShapes(world.config),
          { hiddenSize: world.config.hiddenSize, numLayers: world.config.numLayers },
          { initMethod: 'normal', outputLayerInitMethod: 'normal', initMethodStd: 0.1 },
          seed,
        );
        const loaded = { config: world.config, params, tokenizer: world.tokenizer };
        const sha = String(seed).repeat(64);
        await recordAttention(store, ref, loaded, { attentionText: TEXT }, { ...context, checkpointSha256: sha });
      }
    } finally {
      store.close();
    }
    ({ html } = await writeReport({ suiteDir: work, db, outDir: join(work, 'report') }));
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('a chosen size, step, head and token show the weights stored in the database', { skip }, async () => {
    const { page, errors, requests } = await openReport(browser, html);
    await page.waitForSelector('#attention-viewer[data-state=done], #attention-viewer[data-state=error]');
    assert.equal(await page.$eval('#attention-viewer', (e) => (e as unknown as El).dataset.state), 'done');
    const sizes = await page.$$eval('#attention-viewer .attn-size option', (os) =>
      os.map((o) => (o as unknown as El).value),
    );
    assert.deepEqual(sizes, ['tiny-a', 'tiny-b']);
    await page.select('#attention-viewer .attn-size', 'tiny-a');
    const steps = await page.$$eval('#attention-viewer .attn-step option', (os) =>
      os.map((o) => ({ value: (o as unknown as El).value, text: o.textContent })),
    );
    assert.deepEqual(
      steps.map((s) => s.text),
      ['1', '2'],
    );
    await page.select('#attention-viewer .attn-step', steps[1]!.value);
    await page.click('#attention-viewer .attn-head[data-layer="1"][data-head="1"]');
    const dest = 9;
    await page.click(`#attention-viewer .attn-token[data-position="${dest}"]`);
    // The pointer still rests on the token clicked; move it away, as a reader would, and the choice stays.
    await page.mouse.move(0, 0);

    const store = await ResultsStore.open(db, { readOnly: true });
    let stored: Record<string, unknown>[];
    let tokens: Record<string, unknown>[];
    try {
      stored = await store.rows(`SELECT src, weight FROM attention_patterns
        WHERE model = 'tiny-a' AND step = 2 AND layer = 1 AND head = 1 AND dest = ${dest} ORDER BY src`);
      tokens = await store.rows(
        "SELECT position, text FROM attention_tokens WHERE model = 'tiny-a' AND step = 2 ORDER BY position",
      );
    } finally {
      store.close();
    }
    const shown = await shownTokens(page);
    assert.equal(shown.length, tokens.length);
    for (const t of shown) {
      assert.equal(
        t.text.replace(/\u21b5/g, '\n').replace(/^\u00b7+$/, (dots) => ' '.repeat(dots.length)),
        tokens[t.position]!.text,
        `token ${t.position}`,
      );
      if (t.position > dest) {
        assert.equal(t.written, '', `token ${t.position} comes after the destination`);
        continue;
      }
      const weight = stored[t.position]!.weight as number;
      assert.ok(Math.abs(t.weight - weight) <= 5e-5 + 1e-9, `src ${t.position}: ${t.weight} carried, ${weight} stored`);
      assert.ok(
        Math.abs(Number(t.written) - weight) <= 5e-4 + 1e-9,
        `src ${t.position}: ${t.written} written, ${weight} stored`,
      );
    }
    assert.ok(
      stored.some((r) => (r.weight as number) > 0.01 && (r.weight as number) < 0.99),
      'a spread pattern',
    );
    const caption = await page.$eval('#attention-viewer .attn-caption', (e) => e.textContent ?? '');
    assert.match(caption, new RegExp(`^Layer 1, head 1: what token ${dest} `));
    const pressed = await page.$$eval('#attention-viewer .attn-head[aria-pressed=true]', (bs) =>
      bs.map((b) => `${(b as unknown as El).dataset.layer}.${(b as unknown as El).dataset.head}`),
    );
    assert.deepEqual(pressed, ['1.1']);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      requests.filter((r) => r !== pathToFileURL(html).href),
      [],
      'requests beyond the page',
    );
    await page.close();
  });

  test('without JavaScript the viewer says it needs it', { skip }, async () => {
    const { page } = await openReport(browser, html, { javascript: false });
    const text = await page.$eval('#attention-viewer', (e) => e.textContent ?? '');
    assert.match(text, /needs JavaScript/);
    await page.close();
  });
});
