/**
 * `Suite`: what `pythia suite` writes (`suite.json` and `<model>/step<N>/` checkpoint folders),
 * opened for reading: its models, their steps, and each (model, step) checkpoint.
 */
import { join, resolve } from 'node:path';
import {
  checkpointSteps,
  readSuiteManifest,
  SUITE_MANIFEST,
  type SuiteManifest,
  stepFolderName,
} from '../train/run-folder.js';
import { ConfigError, FormatError } from '../util/errors.js';
import { type FromPretrainedOptions, GPTNeoX } from './gpt-neox.js';

export interface SuiteCheckpoint {
  model: string;
  step: number;
  /** The checkpoint folder, `<suite>/<model>/step<N>`. */
  dir: string;
}

export class Suite {
  private constructor(
    readonly dir: string,
    readonly manifest: SuiteManifest,
  ) {}

  static open(dir: string): Suite {
    const manifest = readSuiteManifest(dir);
    if (!manifest)
      throw new FormatError(dir, `not a suite folder: ${SUITE_MANIFEST} is missing (pythia suite writes it)`);
    return new Suite(resolve(dir), manifest);
  }

  /** Model names, in the manifest's order (the preset's order, smallest first). */
  get models(): string[] {
    return this.manifest.models.map((m) => m.name);
  }

  /** The steps with a checkpoint folder on disk for `model`, ascending. */
  steps(model: string): number[] {
    if (!this.models.includes(model))
      throw new ConfigError(`${this.dir}: no model ${model} in this suite (${this.models.join(', ')})`);
    return checkpointSteps(join(this.dir, model));
  }

  /** Every (model, step) checkpoint, model by model, steps ascending; optionally only some models or steps. */
  checkpoints(filter: { models?: readonly string[]; steps?: readonly number[] } = {}): SuiteCheckpoint[] {
    const models = filter.models ?? this.models;
    return models.flatMap((model) =>
      this.steps(model)
        .filter((step) => filter.steps === undefined || filter.steps.includes(step))
        .map((step) => ({ model, step, dir: join(this.dir, model, stepFolderName(step)) })),
    );
  }

  [Symbol.iterator](): Iterator<SuiteCheckpoint> {
    return this.checkpoints()[Symbol.iterator]();
  }

  /** Loads one checkpoint of the suite. */
  async load(
    model: string,
    step: number,
    options: Omit<FromPretrainedOptions, 'revision' | 'cacheDir'> = {},
  ): Promise<GPTNeoX> {
    if (!this.steps(model).includes(step))
      throw new ConfigError(
        `${this.dir}: ${model} has no checkpoint at step ${step} (steps: ${this.steps(model).join(', ')})`,
      );
    return GPTNeoX.fromPretrained(join(this.dir, model, stepFolderName(step)), options);
  }
}
