/**
 * Interventions as graph inputs against the same edits done by hand in the float64 GPT-NeoX
 * (test/support/reference.ts): head ablation (zero, mean), activation patching, scaling, on the
 * fused and the decomposed attention, on side-branch names (LayerNorm, per-head result) and on
 * differently edited rows of one batch; patching all of resid_pre at layer 0 gives the clean run.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ActivationRunner } from '../../src/model/activations.js';
import type { Activation } from '../../src/model/hooks.js';
import type { Interventions } from '../../src/model/interventions.js';
import { ConfigError } from '../../src/util/errors.js';
import { assertActivationClose, fixtureModel } from '../support/activations.js';
import { type Nd, type ReferenceEdit, referenceGptNeoX } from '../support/reference.js';

/** x with f applied to every element whose leading coordinates (all but the last axis) `pick` accepts. */
function editCells(x: Nd, pick: (lead: number[]) => boolean, f: (v: number, i: number) => number): Nd {
  const inner = x.dims.at(-1)!;
  const leadDims = x.dims.slice(0, -1);
  const data = Float64Array.from(x.data);
  for (let cell = 0; cell < data.length / inner; cell++) {
    const lead: number[] = [];
    let rest = cell;
    for (let a = leadDims.length - 1; a >= 0; a--) {
      lead.unshift(rest % leadDims[a]!);
      rest = Math.floor(rest / leadDims[a]!);
    }
    if (!pick(lead)) continue;
    for (let k = 0; k < inner; k++) data[cell * inner + k] = f(data[cell * inner + k]!, cell * inner + k);
  }
  return { data, dims: [...x.dims] };
}

const toActivation = (x: Nd): Activation => ({ data: Float32Array.from(x.data), dims: [...x.dims] });

describe('interventions, fixture parallel-r25', () => {
  const m = fixtureModel('parallel-r25');
  const [batch, seq] = [m.rows.length, m.rows[0]!.length];
  const nh = m.config.numHeads;
  const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
  after(() => runner.release());
  const clean = referenceGptNeoX(m.config, m.params, m.rows);
  const run = (interventions: Interventions, names: string[] = []) =>
    runner.run(m.ids, batch, { names, logits: 'all', interventions });

  test('zero-ablating a head equals setting its z to 0 by hand', async () => {
    const byHand: ReferenceEdit = (name, x) =>
      name === 'blocks.1.attn.hook_z'
        ? editCells(
            x,
            ([, , h]) => h === 2,
            () => 0,
          )
        : undefined;
    const expected = referenceGptNeoX(m.config, m.params, m.rows, byHand);
    const r = await run({ ablate: [{ layer: 1, head: 2 }] }, ['blocks.1.attn.hook_z']);
    assertActivationClose(r.logits!, expected.logits, 'logits');
    assertActivationClose(r.cache.get('blocks.1.attn.hook_z')!, expected.activations.get('blocks.1.attn.hook_z')!, 'z');
  });

  test("mean-ablating a head at some positions sets its z there to its mean over the batch's rows and positions", async () => {
    const hd = m.config.hiddenSize / nh;
    const byHand: ReferenceEdit = (name, x) => {
      if (name !== 'blocks.0.attn.hook_z') return undefined;
      const mean = new Float64Array(hd);
      for (let bt = 0; bt < batch * seq; bt++)
        for (let e = 0; e < hd; e++) mean[e]! += x.data[(bt * nh + 1) * hd + e]! / (batch * seq);
      return editCells(
        x,
        ([, t, h]) => h === 1 && [0, 5, 9].includes(t!),
        (_, i) => mean[i % hd]!,
      );
    };
    const expected = referenceGptNeoX(m.config, m.params, m.rows, byHand);
    const r = await run({ ablate: [{ layer: 0, head: 1, kind: 'mean', positions: [0, 5, 9] }] });
    assertActivationClose(r.logits!, expected.logits, 'logits');
  });

  test("patching resid_pre at two positions of one row with another input's activation equals the edit by hand", async () => {
    const other = [m.rows[1]!.slice().reverse()];
    const source = referenceGptNeoX(m.config, m.params, other).activations.get('blocks.1.hook_resid_pre')!;
    const byHand: ReferenceEdit = (name, x) =>
      name === 'blocks.1.hook_resid_pre'
        ? editCells(
            x,
            ([b, t]) => b === 1 && (t === 3 || t === 7),
            (_, i) => source.data[i % (seq * m.config.hiddenSize)]!,
          )
        : undefined;
    const expected = referenceGptNeoX(m.config, m.params, m.rows, byHand);
    const r = await run(
      { patch: [{ name: 'blocks.1.hook_resid_pre', value: toActivation(source), rows: [1], positions: [3, 7] }] },
      ['blocks.1.hook_resid_post'],
    );
    assertActivationClose(r.logits!, expected.logits, 'logits');
    assertActivationClose(
      r.cache.get('blocks.1.hook_resid_post')!,
      expected.activations.get('blocks.1.hook_resid_post')!,
      'resid_post',
    );
  });

  test('editing the pattern, LayerNorm normalized and per-head results puts them on the main path', async () => {
    const uniform = editCells(
      clean.activations.get('blocks.0.attn.hook_pattern')!,
      () => true,
      (_, i) => (Math.floor(i / seq) % seq >= i % seq ? 1 / ((Math.floor(i / seq) % seq) + 1) : 0),
    );
    const byHand: ReferenceEdit = (name, x) => {
      if (name === 'blocks.0.attn.hook_pattern')
        return editCells(
          x,
          ([, h, d]) => h === 3 && d! >= 4,
          (_, i) => uniform.data[i]!,
        );
      if (name === 'blocks.1.ln2.hook_normalized')
        return editCells(
          x,
          ([, t]) => t === 2,
          (v) => 0.5 * v,
        );
      if (name === 'blocks.1.attn.hook_result')
        return editCells(
          x,
          ([, , h]) => h === 0,
          (v) => 3 * v,
        );
      return undefined;
    };
    const expected = referenceGptNeoX(m.config, m.params, m.rows, byHand);
    const r = await run({
      patch: [
        {
          name: 'blocks.0.attn.hook_pattern',
          value: toActivation(uniform),
          heads: [3],
          positions: Array.from({ length: seq - 4 }, (_, t) => t + 4),
        },
      ],
      scale: [
        { name: 'blocks.1.ln2.hook_normalized', factor: 0.5, positions: [2] },
        { name: 'blocks.1.attn.hook_result', factor: 3, heads: [0] },
      ],
    });
    assertActivationClose(r.logits!, expected.logits, 'logits');
  });

  test('patching all of resid_pre at layer 0 from the clean run into a corrupt one gives the clean logits', async () => {
    const corrupt = m.rows.map((row) => row.map((id) => (id * 7 + 3) % m.config.vocabSize));
    const corruptIds = BigInt64Array.from(corrupt.flat().map(BigInt));
    const cleanRun = await runner.run(m.ids, batch, { names: ['blocks.0.hook_resid_pre'], logits: 'all' });
    const corruptRun = await runner.run(corruptIds, batch, { names: [], logits: 'all' });
    const patched = await runner.run(corruptIds, batch, {
      names: [],
      logits: 'all',
      interventions: {
        patch: [{ name: 'blocks.0.hook_resid_pre', value: cleanRun.cache.get('blocks.0.hook_resid_pre')! }],
      },
    });
    const V = m.config.vocabSize;
    const diff = (l: Activation, b: number) =>
      l.data[(b * seq + seq - 1) * V + 5]! - l.data[(b * seq + seq - 1) * V + 9]!;
    for (let b = 0; b < batch; b++) {
      const metric =
        (diff(patched.logits!, b) - diff(corruptRun.logits!, b)) /
        (diff(cleanRun.logits!, b) - diff(corruptRun.logits!, b));
      assert.ok(Math.abs(metric - 1) < 1e-5, `row ${b}: normalised logit difference ${metric}`);
    }
  });

  test('rows of one batch edited differently equal each row edited alone, from one compiled graph', async () => {
    const values = [0, 1].map((b) => {
      const full = clean.activations.get('blocks.1.hook_mlp_out')!;
      const row = full.data.subarray(b * seq * 64, (b + 1) * seq * 64).map((v) => -v);
      return { data: Float32Array.from(row), dims: [1, seq, 64] };
    });
    const together = await run({
      patch: [
        { name: 'blocks.1.hook_mlp_out', value: values[0]!, rows: [0], positions: [1] },
        { name: 'blocks.1.hook_mlp_out', value: values[1]!, rows: [1], positions: [2, 3] },
      ],
    });
    const compiled = runner.compiledGraphs;
    // Two values at one position of different rows need a value row per batch row: another graph.
    const overlapping = await run({
      patch: [
        { name: 'blocks.1.hook_mlp_out', value: values[0]!, rows: [0], positions: [1, 2] },
        { name: 'blocks.1.hook_mlp_out', value: values[1]!, rows: [1], positions: [2, 3] },
      ],
    });
    assert.equal(runner.compiledGraphs, compiled + 1);
    const byHand: ReferenceEdit = (name, x) =>
      name === 'blocks.1.hook_mlp_out'
        ? editCells(
            x,
            ([b, t]) => (b === 0 && (t === 1 || t === 2)) || (b === 1 && (t === 2 || t === 3)),
            (v) => -v,
          )
        : undefined;
    assertActivationClose(overlapping.logits!, referenceGptNeoX(m.config, m.params, m.rows, byHand).logits, 'logits');
    const alone = await run({
      patch: [
        { name: 'blocks.1.hook_mlp_out', value: values[0]!, rows: [0], positions: [1] },
        { name: 'blocks.1.hook_mlp_out', value: values[0]!, rows: [], positions: [] },
      ],
    });
    const second = await run({
      patch: [{ name: 'blocks.1.hook_mlp_out', value: values[1]!, rows: [1], positions: [2, 3] }],
    });
    assert.equal(runner.compiledGraphs, compiled + 1, 'the same edited names share one graph');
    const rowSize = seq * m.config.vocabSize;
    for (let i = 0; i < rowSize; i++) {
      assert.ok(Math.abs(together.logits!.data[i]! - alone.logits!.data[i]!) < 1e-5);
      assert.ok(Math.abs(together.logits!.data[rowSize + i]! - second.logits!.data[rowSize + i]!) < 1e-5);
    }
  });

  test('bad edits are one-line ConfigErrors naming the field', async () => {
    const value = { data: new Float32Array(seq * 64), dims: [1, seq, 64] };
    const cases: [Interventions, RegExp][] = [
      [
        { patch: [{ name: 'blocks.1.hook_nothing', value }] },
        /patch\[0\]\.name: "blocks\.1\.hook_nothing" is not a named activation/,
      ],
      [
        { patch: [{ name: 'blocks.1.hook_resid_pre', value, positions: [seq] }] },
        new RegExp(`patch\\[0\\]\\.positions: ${seq} is outside \\[0, ${seq}\\)`),
      ],
      [
        { patch: [{ name: 'blocks.1.hook_resid_pre', value, heads: [0] }] },
        /patch\[0\]\.heads: blocks\.1\.hook_resid_pre has no head axis/,
      ],
      [
        { patch: [{ name: 'blocks.1.attn.hook_z', value }] },
        /patch\[0\]\.value: expected a Float32Array of shape \[2, 24, 4, 16\]/,
      ],
      [{ ablate: [{ layer: 2, head: 0 }] }, /ablate\[0\]\.layer: 2 is outside \[0, 2\)/],
      [{ ablate: [{ layer: 0, head: 0, kind: 'half' as 'zero' }] }, /ablate\[0\]\.kind/],
      [{ scale: [{ name: 'hook_embed', factor: Number.NaN }] }, /scale\[0\]\.factor: expected a finite number/],
    ];
    for (const [interventions, message] of cases)
      await assert.rejects(
        run(interventions),
        (e: Error) => e instanceof ConfigError && message.test(e.message) && !e.message.includes('\n'),
      );
  });
});

describe('interventions, fixture sequential-r100', () => {
  const m = fixtureModel('sequential-r100');
  const runner = new ActivationRunner(m.config, m.params, { threads: 1 });
  after(() => runner.release());

  test('scaling hook_resid_mid and zero-ablating two heads equal the edits by hand', async () => {
    const byHand: ReferenceEdit = (name, x) => {
      if (name === 'blocks.1.hook_resid_mid')
        return editCells(
          x,
          ([b]) => b === 2,
          (v) => -v,
        );
      if (name === 'blocks.2.attn.hook_z')
        return editCells(
          x,
          ([, t, h]) => h !== 1 && t! < 5,
          () => 0,
        );
      return undefined;
    };
    const expected = referenceGptNeoX(m.config, m.params, m.rows, byHand);
    const r = await runner.run(m.ids, m.rows.length, {
      names: [],
      logits: 'all',
      interventions: {
        scale: [{ name: 'blocks.1.hook_resid_mid', factor: -1, rows: [2] }],
        ablate: [0, 2].map((head) => ({ layer: 2, head, positions: [0, 1, 2, 3, 4] })),
      },
    });
    assertActivationClose(r.logits!, expected.logits, 'logits');
  });
});
