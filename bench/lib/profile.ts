// Summarises a V8/JSC .cpuprofile (what `bun --cpu-prof` writes): the
// functions with the most self time, with their inclusive time, as a
// Markdown table that can be quoted. Also a CLI:
//   bun bench/lib/profile.ts <file.cpuprofile> [top=20]

import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { ROOT } from './context'
import { fmt } from './report'

interface CallFrame {
	functionName: string
	url: string
	lineNumber: number
}
interface ProfileNode {
	id: number
	callFrame: CallFrame
	children?: number[]
}
interface CpuProfile {
	nodes: ProfileNode[]
	startTime: number
	endTime: number
	samples: number[]
	timeDeltas: number[]
}

/** One function's share of a profile, in samples. */
export interface FunctionTime {
	name: string
	/** `file:line`, relative to the repository when inside it. */
	where: string
	self: number
	total: number
}

const frameKey = (f: CallFrame): string => {
	const url = f.url.startsWith('file://') ? f.url.slice(7) : f.url
	const file = url.startsWith('/') ? relative(ROOT, url) : url
	return `${f.functionName || (url ? '(anonymous)' : '(anonymous native)')}\u0000${file ? `${file}:${f.lineNumber + 1}` : ''}`
}

/**
 * Self and inclusive samples of every function, most self first. Samples are
 * counted, not weighted by `timeDeltas`: Bun's sampler leaves gaps while the
 * process idles, and a delta spanning one would be charged to a function.
 */
export function summarize(profile: CpuProfile): FunctionTime[] {
	const byId = new Map(profile.nodes.map((n) => [n.id, n]))
	const parent = new Map<number, number>()
	for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
	const self = new Map<string, number>()
	const total = new Map<string, number>()
	for (const id of profile.samples) {
		const node = byId.get(id)
		if (!node) continue
		const key = frameKey(node.callFrame)
		self.set(key, (self.get(key) ?? 0) + 1)
		// Inclusive: every distinct function on the stack, once even when recursive.
		const seen = new Set<string>()
		for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
			const frame = byId.get(cur)?.callFrame
			if (!frame) break
			const k = frameKey(frame)
			if (seen.has(k)) continue
			seen.add(k)
			total.set(k, (total.get(k) ?? 0) + 1)
		}
	}
	return [...self.entries()]
		.map(([key, n]) => {
			const [name = '', where = ''] = key.split('\u0000')
			return { name, where, self: n, total: total.get(key) ?? n }
		})
		.sort((a, b) => b.self - a.self)
}

/** Reads a .cpuprofile file and renders its top `top` functions by self time as Markdown. */
export function profileMarkdown(path: string, top = 20): string {
	const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile
	const functions = summarize(profile)
	const samples = profile.samples.length
	const pct = (n: number) => `${((100 * n) / (samples || 1)).toFixed(1)} %`
	return [
		`Top ${top} functions by self samples in \`${relative(ROOT, path)}\` (${fmt(samples)} samples over ${fmt((profile.endTime - profile.startTime) / 1000)} ms of wall time):`,
		'',
		'| function | where | self samples | self | total |',
		'|---|---|---:|---:|---:|',
		...functions
			.slice(0, top)
			.map(
				(f) =>
					`| \`${f.name.replaceAll('|', '\\|')}\` | ${f.where ? `\`${f.where}\`` : ''} | ${fmt(f.self)} | ${pct(f.self)} | ${pct(f.total)} |`,
			),
		'',
	].join('\n')
}

if (import.meta.main) {
	const [file, top] = process.argv.slice(2)
	if (!file) {
		console.error('usage: bun bench/lib/profile.ts <file.cpuprofile> [top=20]')
		process.exit(2)
	}
	console.log(profileMarkdown(file, Number(top ?? 20)))
}
