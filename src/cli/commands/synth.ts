import type { Command } from 'commander';

/** Registers the `synth` subcommands (filled in by the issue that owns them). */
export function registerSynth(_program: Command): void {}
