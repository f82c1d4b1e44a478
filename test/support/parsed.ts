import { repoPath } from './tools'

// Reading parsed YAML / JSON without `any`: each accessor checks the shape it
// expects and throws naming where it looked.

/** A mapping as YAML or JSON parses it. */
export type Dict = { readonly [key: string]: unknown }

/** Whether `value` is a mapping (not null, not a list). */
export const isDict = (value: unknown): value is Dict =>
	typeof value === 'object' && value !== null && !Array.isArray(value)

/** `value` as a mapping; throws naming `where` otherwise. */
export function dict(value: unknown, where: string): Dict {
	if (!isDict(value)) throw new Error(`${where}: expected a mapping, got ${JSON.stringify(value)}`)
	return value
}

/** `value` as a list; throws naming `where` otherwise. */
export function list(value: unknown, where: string): readonly unknown[] {
	if (!Array.isArray(value)) throw new Error(`${where}: expected a list, got ${JSON.stringify(value)}`)
	return value
}

/** `value` as a string (a number is printed); throws naming `where` otherwise. */
export function str(value: unknown, where: string): string {
	if (typeof value === 'number') return String(value)
	if (typeof value !== 'string') throw new Error(`${where}: expected a string, got ${JSON.stringify(value)}`)
	return value
}

/** `value` as a list of strings; throws naming `where` and the index otherwise. */
export const strings = (value: unknown, where: string): string[] =>
	list(value, where).map((v, i) => str(v, `${where}[${i}]`))

/** The YAML file at `path` (relative to the repository root), parsed. */
export async function readYaml(path: string): Promise<unknown> {
	return Bun.YAML.parse(await Bun.file(repoPath(path)).text())
}
