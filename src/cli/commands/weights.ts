/**
 * `pythia weights`: per checkpoint and parameter group the weights' norm, and their relative change
 * and cosine from the same model's previous checkpoint among those given; the hash of each
 * checkpoint's weights' values, and whether it equals the previous one's.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { type GroupStats, weightStats, weightsSha256 } from '../../analysis/weight-stats.js';
import {
  type CheckpointRef,
  checkpointRef,
  hubCheckpointRefs,
  isCheckpointDir,
  readSuite,
  suiteCheckpoints,
} from '../../eval/checkpoints.js';
import { loadCheckpoint } from '../../model/checkpoint.js';
import type { Params } from '../../model/params.js';
import { UserError } from '../errors.js';
import { CACHE_DIR_OPTION } from './model.js';

interface WeightsFlags {
  json?: boolean;
  cacheDir?: string;
}

/** One line of `--json`: a checkpoint's parameter group. */
interface GroupLine {
  model: string;
  step: number;
  param_group: string;
  norm: number;
  previous_step: number | null;
  relative_change: number | null;
  cosine: number | null;
  weights_sha256: string;
  identical: boolean | null;
}

/** The checkpoints the arguments name: checkpoint folders, suite folders, hub ids or `org/name@step*` globs. */
function checkpointsOf(specs: readonly string[], cacheDir: string | undefined): CheckpointRef[] {
  const refs: CheckpointRef[] = [];
  for (const spec of specs) {
    if (!existsSync(spec)) refs.push(...hubCheckpointRefs(spec, { cacheDir }));
    else if (isCheckpointDir(spec)) refs.push(checkpointRef(spec));
    else {
      const suite = readSuite(spec);
      if (!suite) throw new UserError(`${spec}: neither a checkpoint folder (config.json) nor a suite folder`);
      refs.push(...suiteCheckpoints(suite, {}));
    }
  }
  const seen = new Map<string, string>();
  for (const r of refs) {
    const other = seen.get(`${r.model}@${r.step}`);
    if (other !== undefined && other !== r.dir)
      throw new UserError(`two checkpoints are both ${r.model} step ${r.step}: ${other} and ${r.dir}`);
    seen.set(`${r.model}@${r.step}`, r.dir);
  }
  return [...new Map(refs.map((r) => [`${r.model}@${r.step}`, r])).values()];
}

function format(x: number | null, digits: number): string {
  return x === null ? '-' : x.toPrecision(digits);
}

function printTable(lines: readonly GroupLine[]): void {
  const header = ['model', 'step', 'group', 'norm', 'previous', 'rel_change', 'cosine', 'identical'];
  const rows = lines.map((l) => [
    l.model,
    String(l.step),
    l.param_group,
    format(l.norm, 6),
    l.previous_step === null ? '-' : String(l.previous_step),
    format(l.relative_change, 4),
    format(l.cosine, 6),
    l.identical === null ? '-' : String(l.identical),
  ]);
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((row) => row[j]!.length)));
  const line = (cells: string[]) => cells.map((c, j) => (j < 3 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!)));
  process.stdout.write(`${[line(header), ...rows.map(line)].map((c) => c.join('  ').trimEnd()).join('\n')}\n`);
}

async function runWeights(specs: string[], flags: WeightsFlags): Promise<void> {
  const refs = checkpointsOf(specs, flags.cacheDir);
  const models = [...new Set(refs.map((r) => r.model))];
  const lines: GroupLine[] = [];
  const emit = (
    ref: CheckpointRef,
    previous: { step: number; sha256: string } | undefined,
    stats: GroupStats[],
    sha256: string,
  ) => {
    for (const s of stats) {
      const line: GroupLine = {
        model: ref.model,
        step: ref.step,
        param_group: s.group,
        norm: s.norm,
        previous_step: previous?.step ?? null,
        relative_change: s.relativeChange,
        cosine: s.cosine,
        weights_sha256: sha256,
        identical: previous ? previous.sha256 === sha256 : null,
      };
      if (flags.json) process.stdout.write(`${JSON.stringify(line)}\n`);
      else lines.push(line);
    }
  };
  for (const model of models) {
    const steps = refs.filter((r) => r.model === model).sort((a, b) => a.step - b.step);
    // The previous checkpoint's parameters stay loaded for the next comparison: two at most.
    let previous: { step: number; sha256: string; params: Params } | undefined;
    for (const ref of steps) {
      const { config, params } = loadCheckpoint(ref.dir);
      const sha256 = weightsSha256(params);
      emit(ref, previous, weightStats(config, params, previous?.params), sha256);
      previous = { step: ref.step, sha256, params };
    }
  }
  if (!flags.json) {
    printTable(lines);
    const identical = lines.filter((l) => l.identical && l.param_group === 'all');
    for (const l of identical)
      process.stdout.write(`${l.model} step ${l.step}: weights identical to step ${l.previous_step}\n`);
  }
}

export function registerWeights(program: Command): void {
  program
    .command('weights')
    .description(
      "per checkpoint and parameter group (embed_in, each layer's attention, mlp and layer_norms, final_layer_norm, embed_out, all) the weights' L2 norm, and their relative change ‖w − w_prev‖/‖w_prev‖ and cosine from the model's previous checkpoint given; checkpoints whose weights' values equal the previous one's are flagged identical",
    )
    .argument(
      '<checkpoints...>',
      "checkpoint folders, suite folders, or Hugging Face ids from the local hub cache ('org/name@step*': every step<N> revision there)",
    )
    .option(
      '--json',
      'print one JSON object per checkpoint and group: {model, step, param_group, norm, previous_step, relative_change, cosine, weights_sha256, identical}',
    )
    .option(...CACHE_DIR_OPTION)
    .action((specs: string[], options: WeightsFlags) => runWeights(specs, options));
}
