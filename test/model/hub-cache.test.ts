/**
 * The offline hub-cache resolver against a cache folder laid out as huggingface_hub writes it:
 * refs/<revision> files holding commit hashes, snapshots/<commit>/ whose files are relative
 * symlinks into blobs/ (shared between revisions), blobs named by their hash.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { hubCacheDir, resolveCheckpoint, resolveCheckpoints } from '../../src/model/hub-cache.js';
import { ConfigError } from '../../src/util/errors.js';
import { fixtureDir, repoRoot } from '../support/paths.js';

const root = mkdtempSync(join(tmpdir(), 'pythia-hub-cache-'));
after(() => rmSync(root, { recursive: true, force: true }));

const ID = 'EleutherAI/pythia-70m-deduped';
const MAIN = createHash('sha1').update('main').digest('hex');
const STEP3000 = createHash('sha1').update('step3000').digest('hex');
const ORPHAN = createHash('sha1').update('orphan').digest('hex');

/** Writes one revision the way huggingface_hub does: blob by hash, relative symlink, ref file. */
function addRevision(
  cache: string,
  id: string,
  ref: string | undefined,
  commit: string,
  files: Record<string, Buffer>,
): void {
  const repo = join(cache, `models--${id.replace('/', '--')}`);
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(join(repo, 'snapshots', commit), { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    const blob = createHash('sha256').update(content).digest('hex');
    writeFileSync(join(repo, 'blobs', blob), content);
    symlinkSync(`../../blobs/${blob}`, join(repo, 'snapshots', commit, name));
  }
  if (ref !== undefined) {
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'refs', ref), commit); // no newline, as huggingface_hub writes it
  }
}

const model = join(fixtureDir('parallel-r25'), 'model');
const files = {
  'config.json': readFileSync(join(model, 'config.json')),
  'model.safetensors': readFileSync(join(model, 'model.safetensors')),
};
const cache = join(root, 'hub');
addRevision(cache, ID, 'main', MAIN, files);
addRevision(cache, ID, 'step3000', STEP3000, files);
addRevision(cache, ID, undefined, ORPHAN, { 'config.json': files['config.json'] });
const snapshot = (commit: string): string => join(cache, 'models--EleutherAI--pythia-70m-deduped', 'snapshots', commit);

function assertOneLine(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof ConfigError, `${e.name}: ${e.message}`);
    assert.ok(!e.message.includes('\n'), e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return true;
  });
}

describe('hub ids', () => {
  test('id@stepN resolves through refs/ to its snapshot, whose symlinked files load as a checkpoint', () => {
    const r = resolveCheckpoint(`${ID}@step3000`, { cacheDir: cache });
    assert.deepEqual(r, { dir: snapshot(STEP3000), model: ID, revision: 'step3000', step: 3000 });
    assert.match(readlinkSync(join(r.dir, 'model.safetensors')), /^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
    const loaded = loadCheckpoint(r.dir);
    const original = loadCheckpoint(model);
    for (const [name, p] of original.params) assert.deepEqual(loaded.params.get(name), p, name);
  });

  test('a bare id is main; the revision option picks another; a commit hash names a snapshot directly', () => {
    assert.deepEqual(resolveCheckpoint(ID, { cacheDir: cache }), { dir: snapshot(MAIN), model: ID, revision: 'main' });
    assert.deepEqual(resolveCheckpoint(ID, { cacheDir: cache, revision: 'step3000' }).dir, snapshot(STEP3000));
    // A hash that a step ref names carries that step.
    assert.deepEqual(resolveCheckpoint(`${ID}@${STEP3000}`, { cacheDir: cache }), {
      dir: snapshot(STEP3000),
      model: ID,
      revision: STEP3000,
      step: 3000,
    });
    assert.deepEqual(resolveCheckpoint(`${ID}@${ORPHAN}`, { cacheDir: cache }), {
      dir: snapshot(ORPHAN),
      model: ID,
      revision: ORPHAN,
    });
  });

  test('the cache folder comes from HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub', () => {
    assert.equal(hubCacheDir({ HF_HUB_CACHE: '/x/hub-cache', HF_HOME: '/y' }), '/x/hub-cache');
    assert.equal(hubCacheDir({ HUGGINGFACE_HUB_CACHE: '/old/name' }), '/old/name');
    assert.equal(hubCacheDir({ HF_HOME: '/y', XDG_CACHE_HOME: '/z' }), '/y/hub');
    assert.equal(hubCacheDir({ HF_HOME: '~/hf' }), join(homedir(), 'hf/hub'));
    assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/z' }), '/z/huggingface/hub');
    assert.equal(hubCacheDir({}), join(homedir(), '.cache/huggingface/hub'));
    const saved = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = cache;
    try {
      assert.equal(resolveCheckpoint(`${ID}@step3000`).dir, snapshot(STEP3000));
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = saved;
    }
  });

  test('a revision not in the cache: one line listing the refs and snapshots present and how to fetch it', () => {
    assertOneLine(
      () => resolveCheckpoint(`${ID}@step5000`, { cacheDir: cache }),
      `${ID}: revision step5000 is not in the Hugging Face cache ${cache}`,
      'revisions present: main, step3000;',
      `snapshots: ${[MAIN, ORPHAN, STEP3000].sort().join(', ')}`,
      `huggingface-cli download ${ID} --revision step5000`,
    );
    assertOneLine(
      () => resolveCheckpoint(`${ID}@${'0'.repeat(40)}`, { cacheDir: cache }),
      'is not in the Hugging Face cache',
      'main, step3000',
    );
  });

  test('a ref whose snapshot is gone, a model not in the cache, and text that is neither folder nor id: one-line errors', () => {
    const other = join(root, 'other-cache');
    addRevision(other, 'EleutherAI/pythia-14m', 'main', MAIN, files);
    writeFileSync(join(other, 'models--EleutherAI--pythia-14m', 'refs', 'step1'), STEP3000);
    assertOneLine(
      () => resolveCheckpoint('EleutherAI/pythia-14m@step1', { cacheDir: other }),
      `names commit ${STEP3000}, whose snapshot is missing`,
    );
    assertOneLine(
      () => resolveCheckpoint('EleutherAI/pythia-160m@step1000', { cacheDir: cache }),
      'EleutherAI/pythia-160m@step1000: no such checkpoint folder, and EleutherAI/pythia-160m is not in the Hugging Face cache',
      'huggingface-cli download EleutherAI/pythia-160m --revision step1000',
    );
    for (const spec of ['./no/such/folder', 'a/b/c', 'plainname', '/abs/missing']) {
      assertOneLine(
        () => resolveCheckpoint(spec, { cacheDir: cache }),
        `${spec}: no such checkpoint folder, and not a Hugging Face model id`,
      );
    }
    assertOneLine(() => resolveCheckpoint(`${ID}@main`, { cacheDir: cache, revision: 'step3000' }), 'give one');
  });
});

describe('a glob over the step revisions of an id', () => {
  // Steps written out of order, a branch and a tag beside them, main naming the last step's commit.
  const globCache = join(root, 'glob-hub');
  const GLOB_ID = 'EleutherAI/pythia-160m';
  const commitOf = (ref: string): string => createHash('sha1').update(`160m ${ref}`).digest('hex');
  for (const step of [1000, 0, 143000, 512, 1])
    addRevision(globCache, GLOB_ID, `step${step}`, commitOf(`step${step}`), { 'config.json': files['config.json'] });
  writeFileSync(join(globCache, 'models--EleutherAI--pythia-160m', 'refs', 'main'), commitOf('step143000'));
  addRevision(globCache, GLOB_ID, 'v1.0', commitOf('v1.0'), { 'config.json': files['config.json'] });
  const globSnapshot = (ref: string) => join(globCache, 'models--EleutherAI--pythia-160m', 'snapshots', commitOf(ref));
  const steps = (spec: string) => resolveCheckpoints(spec, { cacheDir: globCache }).map((r) => r.step);

  test('id@step* is every step<N> revision in the cache, in step order, each resolved to its own snapshot', () => {
    const all = resolveCheckpoints(`${GLOB_ID}@step*`, { cacheDir: globCache });
    assert.deepEqual(
      all,
      [0, 1, 512, 1000, 143000].map((step) => ({
        dir: globSnapshot(`step${step}`),
        model: GLOB_ID,
        revision: `step${step}`,
        step,
      })),
    );
  });

  test('the pattern matches the whole revision name; a spec without * is the one checkpoint it names', () => {
    assert.deepEqual(steps(`${GLOB_ID}@step1*`), [1, 1000, 143000]);
    assert.deepEqual(steps(`${GLOB_ID}@step*000`), [1000, 143000]);
    assert.deepEqual(steps(`${GLOB_ID}@*`), [0, 1, 512, 1000, 143000], 'main and v1.0 are not step revisions');
    assert.deepEqual(resolveCheckpoints(`${GLOB_ID}@step512`, { cacheDir: globCache }), [
      resolveCheckpoint(`${GLOB_ID}@step512`, { cacheDir: globCache }),
    ]);
    assert.deepEqual(steps(GLOB_ID), [143000], 'a bare id is main, whose commit is step143000');
  });

  test('a pattern matching none, an id not in the cache, a pattern beside --revision: one-line errors', () => {
    assertOneLine(
      () => resolveCheckpoints(`${GLOB_ID}@step9*`, { cacheDir: globCache }),
      `${GLOB_ID}@step9*: no step<N> revision matching step9* in the Hugging Face cache ${globCache}`,
      'revisions present: main, step0, step1, step512, step1000, step143000, v1.0',
    );
    assertOneLine(
      () => resolveCheckpoints('EleutherAI/pythia-410m@step*', { cacheDir: globCache }),
      'EleutherAI/pythia-410m is not in the Hugging Face cache',
      'huggingface-cli download EleutherAI/pythia-410m --revision step<N>',
    );
    assertOneLine(
      () => resolveCheckpoints(`${GLOB_ID}@step*`, { cacheDir: globCache, revision: 'main' }),
      'revision pattern step* in the id and main as an option',
    );
  });

  test('a matched step whose snapshot is missing is refused by name, not skipped', () => {
    const partial = join(root, 'partial-hub');
    addRevision(partial, GLOB_ID, 'step0', commitOf('step0'), { 'config.json': files['config.json'] });
    mkdirSync(join(partial, 'models--EleutherAI--pythia-160m', 'refs'), { recursive: true });
    writeFileSync(join(partial, 'models--EleutherAI--pythia-160m', 'refs', 'step1'), commitOf('step1'));
    assertOneLine(
      () => resolveCheckpoints(`${GLOB_ID}@step*`, { cacheDir: partial }),
      `revision step1 names commit ${commitOf('step1')}, whose snapshot is missing`,
    );
  });
});

describe('a snapshot whose blob is missing', () => {
  const damaged = join(root, 'damaged-cache');
  /** A revision laid out whole, then its weights' blob removed: the snapshot's link dangles. */
  const damage = (id: string): { link: string; blob: string } => {
    addRevision(damaged, id, 'main', MAIN, files);
    const repo = join(damaged, `models--${id.replace('/', '--')}`);
    const blob = join(repo, 'blobs', createHash('sha256').update(files['model.safetensors']).digest('hex'));
    rmSync(blob);
    return { link: join(repo, 'snapshots', MAIN, 'model.safetensors'), blob };
  };
  const gone = damage('EleutherAI/pythia-160m');
  const interrupted = damage('EleutherAI/pythia-410m');
  // huggingface_hub downloads into blobs/<hash>.incomplete before moving it into place.
  writeFileSync(`${interrupted.blob}.incomplete`, files['model.safetensors'].subarray(0, 100));

  test('names the dangling link and the blob it points to, not "no weights found"', () => {
    assertOneLine(
      () => resolveCheckpoint('EleutherAI/pythia-160m', { cacheDir: damaged }),
      `EleutherAI/pythia-160m@main: ${gone.link} links to ${gone.blob}, which is missing from the Hugging Face cache;`,
      'fetch it again with huggingface-cli download EleutherAI/pythia-160m --revision main',
    );
    assertOneLine(
      () => resolveCheckpoint('EleutherAI/pythia-410m@main', { cacheDir: damaged }),
      `${interrupted.link} links to ${interrupted.blob}, which is missing from the Hugging Face cache (an interrupted download left ${interrupted.blob}.incomplete);`,
    );
  });

  test('the CLI prints the same one line', () => {
    const r = spawnSync(
      process.execPath,
      [join(repoRoot, 'dist/src/cli/main.js'), 'inspect', 'EleutherAI/pythia-160m', '--cache-dir', damaged],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      `pythia: EleutherAI/pythia-160m@main: ${gone.link} links to ${gone.blob}, which is missing from the Hugging Face cache; fetch it again with huggingface-cli download EleutherAI/pythia-160m --revision main\n`,
    );
  });
});

describe('folders', () => {
  test("a folder is itself; a suite's <model>/step<N> names the model and the step", () => {
    const stepDir = join(root, 'suite', 'nano-a', 'step512');
    mkdirSync(stepDir, { recursive: true });
    assert.deepEqual(resolveCheckpoint(stepDir), { dir: stepDir, model: 'nano-a', step: 512 });
    assert.deepEqual(resolveCheckpoint(model), { dir: model, model: 'model' });
    assertOneLine(
      () => resolveCheckpoint(model, { revision: 'main' }),
      'a revision applies to a Hugging Face model id, not to a folder',
    );
  });
});

describe('the commands that take a checkpoint', () => {
  const cli = join(repoRoot, 'dist/src/cli/main.js');
  test('inspect takes id@rev from the cache (--cache-dir or HF_HUB_CACHE) and --revision', () => {
    const viaOption = spawnSync(process.execPath, [cli, 'inspect', `${ID}@step3000`, '--cache-dir', cache, '--json'], {
      encoding: 'utf8',
    });
    assert.equal(viaOption.status, 0, viaOption.stderr);
    assert.equal(JSON.parse(viaOption.stdout).weights, join(snapshot(STEP3000), 'model.safetensors'));
    const viaEnv = spawnSync(process.execPath, [cli, 'inspect', ID, '--revision', 'step3000', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, HF_HUB_CACHE: cache },
    });
    assert.equal(viaEnv.status, 0, viaEnv.stderr);
    assert.equal(JSON.parse(viaEnv.stdout).weights, join(snapshot(STEP3000), 'model.safetensors'));
    const missing = spawnSync(
      process.execPath,
      [cli, 'generate', `${ID}@step9`, '--cache-dir', cache, '--tokens', 'x.json'],
      { encoding: 'utf8' },
    );
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr,
      /^pythia: EleutherAI\/pythia-70m-deduped: revision step9 is not in the Hugging Face cache .*huggingface-cli download EleutherAI\/pythia-70m-deduped --revision step9\n$/,
    );
  });
});
