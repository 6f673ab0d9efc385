import type { Command } from 'commander';

/** Registers the `batch` subcommands (filled in by the issue that owns them). */
export function registerBatch(_program: Command): void {}
