import type { Command } from 'commander';

/** Registers the `model` subcommands (filled in by the issue that owns them). */
export function registerModel(_program: Command): void {}
