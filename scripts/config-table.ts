import { ENV_VARIABLES } from '../src/config';

/** Prints the README's configuration table from the settings schema (the one source of truth). */
export function configTable(): string {
  const rows = ENV_VARIABLES.map(({ name, description }) => `| \`${name}\` | ${description.replace(/\|/g, '\\|')} |`);
  return ['| variable | meaning |', '| --- | --- |', ...rows].join('\n');
}

if (require.main === module) process.stdout.write(`${configTable()}\n`);
