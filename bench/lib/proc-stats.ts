// CPU time and resident memory of whole process trees, from /proc. CPU is
// the stable figure on a shared machine: ticks spent per request do not
// depend on how much of the CPU other tenants left us, req/s does.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on every Linux build we know). */
const CLK_TCK = Number(Bun.spawnSync(['getconf', 'CLK_TCK']).stdout.toString().trim()) || 100

interface Stat {
	ppid: number
	ticks: number
}

function readStat(pid: number): Stat | null {
	let text: string
	try {
		text = readFileSync(`/proc/${pid}/stat`, 'utf8')
	} catch {
		return null
	}
	// Fields after the command name, which is in parentheses and may contain spaces.
	const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
	// rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) }
}

/** `roots` and every descendant of them that is alive now. */
export function processTree(roots: readonly number[]): number[] {
	const children = new Map<number, number[]>()
	for (const name of readdirSync('/proc')) {
		const pid = Number(name)
		if (!Number.isInteger(pid)) continue
		const stat = readStat(pid)
		if (!stat) continue
		const list = children.get(stat.ppid)
		if (list) list.push(pid)
		else children.set(stat.ppid, [pid])
	}
	const out: number[] = []
	const queue = [...roots]
	for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
		if (out.includes(pid)) continue
		out.push(pid)
		queue.push(...(children.get(pid) ?? []))
	}
	return out
}

/** User + system CPU seconds spent so far by these processes (all their threads). */
export function cpuSeconds(pids: readonly number[]): number {
	let ticks = 0
	for (const pid of pids) ticks += readStat(pid)?.ticks ?? 0
	return ticks / CLK_TCK
}

/** Resident memory of a set of processes, summed, in bytes. */
export interface Memory {
	/** VmRSS: pages mapped by each process, shared ones counted in every process that maps them. */
	rss: number
	/** Proportional set size: a page shared by n processes counts 1/n in each, so the sum is what the set holds. */
	pss: number
	/** RssAnon: anonymous pages (heaps, stacks, buffers), the part that grows with load; not the mapped binary or files. */
	anon: number
}

// Anchored: `SwapPss:` must not pass for `Pss:`.
const FIELDS = { VmRSS: /^VmRSS:\s+(\d+) kB/m, RssAnon: /^RssAnon:\s+(\d+) kB/m, Pss: /^Pss:\s+(\d+) kB/m }

const kB = (text: string, field: keyof typeof FIELDS): number => Number(FIELDS[field].exec(text)?.[1] ?? 0) * 1024

/** Sums of VmRSS and RssAnon (/proc/<pid>/status) and Pss (/proc/<pid>/smaps_rollup) of these processes. */
export function memoryOf(pids: readonly number[]): Memory {
	const total: Memory = { rss: 0, pss: 0, anon: 0 }
	for (const pid of pids) {
		try {
			const status = readFileSync(`/proc/${pid}/status`, 'utf8')
			// Both are read before anything is added: a process gone in between adds nothing.
			const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
			total.rss += kB(status, 'VmRSS')
			total.anon += kB(status, 'RssAnon')
			total.pss += kB(rollup, 'Pss')
		} catch {
			// Gone since the tree was listed.
		}
	}
	return total
}

/** What a process tree spent while `fn` ran. */
export interface Usage {
	/** CPU seconds of the server tree (user + system). */
	cpuS: number
	/** CPU seconds of each group of side processes (e.g. `Redis`, `s3rver`), by the group's name. */
	sideCpuS: Record<string, number>
	/** Peak of the tree's summed RSS, sampled every `sampleMs`, in bytes. */
	peakRss: number
	/** Peak of the tree's summed PSS, same samples. */
	peakPss: number
	/** Peak of the tree's summed RssAnon, same samples. */
	peakAnon: number
	/** The tree's RSS before `fn`, in bytes. */
	idleRss: number
}

/**
 * Runs `fn` while watching the process trees of `roots` (CPU before and
 * after, RSS, PSS and anonymous memory sampled, each for its own peak) and
 * the CPU of each named group of `side` processes (e.g. redis-server).
 */
export async function watchUsage<T>(
	roots: readonly number[],
	side: Readonly<Record<string, readonly number[]>>,
	fn: () => Promise<T>,
	sampleMs = 100,
): Promise<{ result: T; usage: Usage }> {
	const tree0 = processTree(roots)
	const cpu0 = cpuSeconds(tree0)
	const sides = Object.entries(side)
	const side0 = sides.map(([, pids]) => cpuSeconds(pids))
	const idle = memoryOf(tree0)
	const peak = { ...idle }
	const sample = (pids: readonly number[]) => {
		const m = memoryOf(pids)
		peak.rss = Math.max(peak.rss, m.rss)
		peak.pss = Math.max(peak.pss, m.pss)
		peak.anon = Math.max(peak.anon, m.anon)
	}
	// Workers may appear late (or be respawned): list the tree again at each sample.
	let tree = tree0
	const timer = setInterval(() => {
		tree = processTree(roots)
		sample(tree)
	}, sampleMs)
	try {
		const result = await fn()
		const treeEnd = processTree(roots)
		sample(treeEnd)
		// A process that started during the run counts from zero, which is right.
		const cpuS = cpuSeconds([...new Set([...tree0, ...treeEnd, ...tree])]) - cpu0
		const sideCpuS = Object.fromEntries(sides.map(([name, pids], i) => [name, cpuSeconds(pids) - (side0[i] ?? 0)]))
		return {
			result,
			usage: { cpuS, sideCpuS, peakRss: peak.rss, peakPss: peak.pss, peakAnon: peak.anon, idleRss: idle.rss },
		}
	} finally {
		clearInterval(timer)
	}
}

/** Inodes of the sockets listening on loopback/any `port` (IPv4 and IPv6). */
function listeningInodes(port: number): Set<string> {
	const inodes = new Set<string>()
	const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
	for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
		let text = ''
		try {
			text = readFileSync(file, 'utf8')
		} catch {
			continue
		}
		for (const line of text.split('\n').slice(1)) {
			const f = line.trim().split(/\s+/)
			// local_address is ADDR:PORT, st 0A is LISTEN, inode is field 9.
			if (f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A' && f[9]) inodes.add(f[9])
		}
	}
	return inodes
}

/** How many processes of the tree under `root` hold a socket listening on `port`. */
export function listeningProcesses(root: number, port: number): number {
	const inodes = listeningInodes(port)
	let count = 0
	for (const pid of processTree([root])) {
		let fds: string[] = []
		try {
			fds = readdirSync(`/proc/${pid}/fd`)
		} catch {
			continue
		}
		const holds = fds.some((fd) => {
			try {
				const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
				return m?.[1] !== undefined && inodes.has(m[1])
			} catch {
				return false
			}
		})
		if (holds) count++
	}
	return count
}
