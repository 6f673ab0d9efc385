import type { Command } from 'commander';

/** Registers the `data` subcommands (filled in by the issue that owns them). */
export function registerData(_program: Command): void {}
