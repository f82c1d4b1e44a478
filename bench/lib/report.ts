// Results: one section per scenario, one row per target (or variant), and
// the Markdown written to bench/results/<date>.md.

/** A reference a row's figures are divided by, within its group: `baseline`, `nginx`, `Fastify`… */
export type RefKind = string

/** One target (or variant) in one scenario. */
export interface Row {
	/** What was measured, e.g. `download-gate`, `nginx secure_link`. */
	target: string
	/** What differs from the other rows of the target, e.g. `budgeted token`. */
	variant?: string
	/** e.g. `Bun 1.4.5`, `nginx 1.22.1`. */
	runtime?: string
	processes?: number
	/** Rows are compared with the references of the same group (default: their process count); a reference in group `*` serves every group. */
	group?: string
	/** This row is the group's baseline or nginx reference. */
	ref?: RefKind
	/** The scenario's main figure (req/s or MB/s): the median and every run behind it. */
	value?: number
	runs?: number[]
	p50Ms?: number
	p99Ms?: number
	/** Server CPU seconds (whole process tree) per request. */
	cpuPerReqS?: number
	/** CPU seconds per request of the processes the target depends on, by name (`Redis`, `s3rver`). */
	sideCpuPerReqS?: Readonly<Record<string, number>>
	/** Peaks of the tree's summed VmRSS, Pss and RssAnon (each its own peak). */
	peakRssBytes?: number
	peakPssBytes?: number
	peakAnonBytes?: number
	idleRssBytes?: number
	/** A target the row is checked against, e.g. `≥ 0.7× baseline`, and whether it was met. */
	check?: { target: string; pass: boolean }
	note?: string
}

/** A figure a ratio column divides: the main one, CPU per request (`total`: side processes included), or a memory peak. */
export type RatioFigure = 'value' | 'cpu' | 'total' | 'rss' | 'pss' | 'anon'

const RATIO_HEAD: Record<Exclude<RatioFigure, 'value' | 'total'>, string> = {
	cpu: 'CPU',
	rss: 'peak RSS',
	pss: 'peak PSS',
	anon: 'peak anon',
}

const figureOf = (r: Row, figure: RatioFigure): number | undefined =>
	({
		value: r.value,
		cpu: r.cpuPerReqS,
		total: totalCpu(r),
		rss: r.peakRssBytes,
		pss: r.peakPssBytes,
		anon: r.peakAnonBytes,
	})[figure]

/** One scenario's results. */
export interface Section {
	id: string
	title: string
	/** Unit of `Row.value`. */
	metric: 'req/s' | 'MB/s'
	/** How CPU per request is shown: µs per request, or ms per download of a large file. */
	cpuUnit: 'µs/req' | 'ms/download'
	/** What the scenario does, one paragraph. */
	about: string
	/** Reference kinds that get ratio columns, in order (default baseline, nginx). */
	refs?: RefKind[]
	/** Which figures get ratio columns (default the main figure and CPU). */
	ratios?: RatioFigure[]
	rows: Row[]
	notes: string[]
}

const MiB = 1024 * 1024

/** `n` with thousands separators and `digits` decimals. */
export const fmt = (n: number, digits = 0): string =>
	n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

/** The median of `xs` (0 for none). */
export function median(xs: readonly number[]): number {
	const s = [...xs].sort((a, b) => a - b)
	const m = Math.floor(s.length / 2)
	if (s.length === 0) return 0
	return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

const groupOf = (r: Row) => r.group ?? (r.processes === undefined ? '' : String(r.processes))

function refFor(section: Section, row: Row, kind: RefKind): Row | undefined {
	return (
		section.rows.find((r) => r.ref === kind && groupOf(r) === groupOf(row)) ??
		section.rows.find((r) => r.ref === kind && r.group === '*')
	)
}

const ratio = (a: number | undefined, b: number | undefined) =>
	a === undefined || b === undefined || b === 0 ? '' : `${a / b >= 10 ? fmt(a / b, 1) : (a / b).toFixed(2)}×`

const cpu = (s: number | undefined, unit: Section['cpuUnit']) => {
	if (s === undefined) return ''
	const n = unit === 'µs/req' ? s * 1e6 : s * 1e3
	return fmt(n, n < 100 ? 1 : 0)
}

const value = (v: number | undefined) => (v === undefined ? '' : fmt(v, v < 100 ? 1 : 0))

const mib = (bytes: number | undefined) => (bytes === undefined ? '' : fmt(bytes / MiB, 1))

/** The names of side processes whose CPU some row of the section reports, in the order first met. */
const sideNames = (section: Section) => [...new Set(section.rows.flatMap((r) => Object.keys(r.sideCpuPerReqS ?? {})))]

interface Column {
	head: string
	right: boolean
	cell: (r: Row) => string
}

/** What a ratio column divides, as its head says it: `req/s`, `CPU`, `CPU+Redis`, `peak PSS`… */
function ratioHead(section: Section, figure: RatioFigure): string {
	if (figure === 'value') return section.metric
	if (figure === 'total') return ['CPU', ...sideNames(section)].join('+')
	return RATIO_HEAD[figure]
}

/** The section as a Markdown table (columns nobody filled are left out) and its notes. */
export function sectionMarkdown(section: Section): string {
	const { cpuUnit } = section
	const columns: Column[] = [
		{ head: 'target', right: false, cell: (r) => (r.variant ? `${r.target}, ${r.variant}` : r.target) },
		{
			head: 'runtime, processes',
			right: false,
			cell: (r) => [r.runtime, r.processes === undefined ? '' : `×${r.processes}`].filter(Boolean).join(' '),
		},
		{ head: section.metric, right: true, cell: (r) => value(r.value) },
		{ head: 'p50 ms', right: true, cell: (r) => (r.p50Ms === undefined ? '' : r.p50Ms.toFixed(2)) },
		{ head: 'p99 ms', right: true, cell: (r) => (r.p99Ms === undefined ? '' : r.p99Ms.toFixed(2)) },
		{ head: `CPU ${cpuUnit}`, right: true, cell: (r) => cpu(r.cpuPerReqS, cpuUnit) },
		...sideNames(section).map(
			(name): Column => ({
				head: `${name} CPU ${cpuUnit}`,
				right: true,
				cell: (r) => cpu(r.sideCpuPerReqS?.[name], cpuUnit),
			}),
		),
		{ head: 'peak RSS MiB', right: true, cell: (r) => mib(r.peakRssBytes) },
		{ head: 'peak PSS MiB', right: true, cell: (r) => mib(r.peakPssBytes) },
		{ head: 'peak anon MiB', right: true, cell: (r) => mib(r.peakAnonBytes) },
		...(section.refs ?? ['baseline', 'nginx']).flatMap((kind) =>
			(section.ratios ?? ['value', 'cpu']).map(
				(figure): Column => ({
					head: `${ratioHead(section, figure)} ÷ ${kind}`,
					right: true,
					cell: (r) => {
						const ref = r.ref === kind ? undefined : refFor(section, r, kind)
						return ref ? ratio(figureOf(r, figure), figureOf(ref, figure)) : ''
					},
				}),
			),
		),
		{
			head: 'check',
			right: false,
			cell: (r) => (r.check ? `${r.check.pass ? 'pass' : '**fail**'} (${r.check.target})` : ''),
		},
		{
			head: 'notes',
			right: false,
			cell: (r) =>
				[r.runs && r.runs.length > 1 ? `runs ${r.runs.map((x) => value(x)).join(' / ')}` : '', r.note ?? '']
					.filter(Boolean)
					.join('; '),
		},
	]
	const used = columns.filter((c) => section.rows.some((r) => c.cell(r) !== ''))
	const lines = [
		`## ${section.title}`,
		'',
		section.about,
		'',
		`| ${used.map((c) => c.head).join(' | ')} |`,
		`|${used.map((c) => (c.right ? '---:' : '---')).join('|')}|`,
		...section.rows.map((r) => `| ${used.map((c) => c.cell(r).replaceAll('|', '\\|')).join(' | ')} |`),
	]
	if (section.notes.length) lines.push('', ...section.notes.map((n) => `- ${n}`))
	return `${lines.join('\n')}\n`
}

/** One console line for a row as soon as it is known. */
export function rowLine(section: Section, r: Row): string {
	const parts = [
		`${section.id} | ${r.target}${r.variant ? `, ${r.variant}` : ''}${r.processes ? ` ×${r.processes}` : ''}`,
		r.value === undefined ? '' : `${value(r.value)} ${section.metric}`,
		r.p99Ms === undefined ? '' : `p50 ${r.p50Ms?.toFixed(2)} p99 ${r.p99Ms.toFixed(2)} ms`,
		r.cpuPerReqS === undefined ? '' : `CPU ${cpu(r.cpuPerReqS, section.cpuUnit)} ${section.cpuUnit}`,
		...Object.entries(r.sideCpuPerReqS ?? {}).map(([name, s]) => `${name} CPU ${cpu(s, section.cpuUnit)}`),
		r.peakRssBytes === undefined ? '' : `peak RSS ${mib(r.peakRssBytes)} MiB`,
		r.peakPssBytes === undefined ? '' : `PSS ${mib(r.peakPssBytes)} MiB`,
		r.peakAnonBytes === undefined ? '' : `anon ${mib(r.peakAnonBytes)} MiB`,
		r.check ? (r.check.pass ? 'PASS' : 'FAIL') : '',
		r.note ?? '',
	]
	return parts.filter(Boolean).join(' · ')
}

/** The fields of a row that name what was measured: target, variant, runtime, processes, reference. */
export function rowOf(arm: {
	readonly target: { readonly name: string; readonly runtime: string; readonly processes: number }
	readonly variant?: string | undefined
	readonly ref?: string | undefined
}) {
	return {
		target: arm.target.name,
		variant: arm.variant,
		runtime: arm.target.runtime,
		processes: arm.target.processes,
		ref: arm.ref,
	}
}

/** CPU seconds per request of the row's tree and its side processes together; undefined when not measured. */
export function totalCpu(row: Row): number | undefined {
	if (row.cpuPerReqS === undefined) return undefined
	return Object.values(row.sideCpuPerReqS ?? {}).reduce((a, s) => a + s, row.cpuPerReqS)
}

/** `a ÷ b` as the report prints ratios (`1.23×`), or '' when either is missing. */
export const ratioText = (a: number | undefined, b: number | undefined): string => ratio(a, b)

/** CPU seconds as the section's unit prints them, with the unit. */
export const cpuText = (s: number | undefined, unit: Section['cpuUnit']): string =>
	s === undefined ? '' : `${cpu(s, unit)} ${unit}`
