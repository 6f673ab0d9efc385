import type { Command } from 'commander';

/** Registers the `tokenizer` subcommands (filled in by the issue that owns them). */
export function registerTokenizer(_program: Command): void {}
