/** One `VAR=value` or commented-out `# VAR=value` line of an env file. */
export interface EnvFileEntry {
	readonly name: string
	readonly value: string
	readonly commented: boolean
	/** The comment line just above it, if any. */
	readonly comment: string | null
}

const ASSIGNMENT = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/

/** Every `VAR=` and `# VAR=` line of an env file, with the comment line just above it. */
export function envFileEntries(text: string): EnvFileEntry[] {
	const lines = text.split('\n')
	const entries: EnvFileEntry[] = []
	lines.forEach((line, i) => {
		const m = ASSIGNMENT.exec(line.trim())
		if (m === null) return
		const above = (lines[i - 1] ?? '').trim()
		const isComment = above.startsWith('#') && !ASSIGNMENT.test(above) && above.replace(/^#\s*/, '') !== ''
		entries.push({
			name: m[2] ?? '',
			value: m[3] ?? '',
			commented: m[1] !== undefined,
			comment: isComment ? above : null,
		})
	})
	return entries
}
