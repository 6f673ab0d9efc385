import type { Command } from 'commander';

/** Registers the `train` command (filled in by the training issue). */
export function registerTrain(_program: Command): void {}
