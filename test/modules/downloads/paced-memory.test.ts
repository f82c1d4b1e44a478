import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bearer, downloadPath, randomBytesOf, serviceEnv } from '../../support/helpers'
import { pollUntil } from '../../support/poll'
import { type ServerProcess, startServerProcess } from '../../support/server-process'
import { parseScrape } from '../ops/prometheus'
import { type HeldDownload, openDownload } from './held-download'

// rate= (docs/contract.md §3.1, §3.2): a paced body reads nothing until its
// next chunk is due, so 50 paced clients cost the service no more memory than
// 50 clients that read as slowly without a pace (the bound slow clients already
// have). Each scenario runs on a fresh service process with the same
// configuration, so neither inherits the other's heap; the figure is the
// process's anonymous resident memory (RssAnon: heap and buffers, not the
// page cache of the file), its peak while the bodies run, over its level before.

const MiB = 1024 * 1024
const SIZE = 64 * MiB
const CLIENTS = 50
const RATE = 65_536
const RUN_MS = 5000

let storage: string
beforeAll(async () => {
	storage = await mkdtemp(join(tmpdir(), 'dlg-paced-'))
	await mkdir(join(storage, 'u'))
	await writeFile(join(storage, 'u', 'big.mp4'), randomBytesOf(SIZE))
})
afterAll(() => rm(storage, { recursive: true, force: true }))

/** The process's anonymous resident memory in bytes. */
async function rssAnon(pid: number): Promise<number> {
	const status = await Bun.file(`/proc/${pid}/status`).text()
	return Number(/RssAnon:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) * 1024
}

const pacedInFlight = async (server: ServerProcess) =>
	parseScrape(await (await fetch(`${server.url}/metrics`)).text()).value('download_gate_paced_bodies_in_flight')

interface Run {
	/** Peak RssAnon over the level before the clients came, in bytes. */
	readonly growth: number
	readonly before: number
	readonly peak: number
	/** download_gate_paced_bodies_in_flight while the bodies ran. */
	readonly pacedWhileRunning: number
	/** Body bytes the clients received, all together. */
	readonly received: number
}

/**
 * Starts a service, warms it up, opens CLIENTS bodies with the token `query`
 * asks for, lets each client read as `read` says for RUN_MS, and measures.
 */
async function measure(query: string, read: (d: HeldDownload) => void): Promise<Run> {
	const server = await startServerProcess(serviceEnv(storage, { RATE_LIMIT_ISSUE: '100000/min' }))
	try {
		const res = await fetch(`${server.url}/api/get-download-token/u/big.mp4?ttl=600${query}`)
		expect(res.status).toBe(200)
		const { token } = (await res.json()) as { token: string }
		// Warm-up: one body of each kind through the whole path, cut after its first bytes.
		const warm = await openDownload(server.url, downloadPath('u', 'big.mp4'), bearer(token))
		await warm.readAtLeast(1)
		warm.abort()
		await Bun.sleep(500)
		const before = await rssAnon(server.pid)

		const downloads = await Promise.all(
			Array.from({ length: CLIENTS }, () => openDownload(server.url, downloadPath('u', 'big.mp4'), bearer(token))),
		)
		expect(downloads.map((d) => d.status)).toEqual(Array(CLIENTS).fill(200))
		for (const d of downloads) read(d)
		let peak = before
		const until = performance.now() + RUN_MS
		while (performance.now() < until) {
			peak = Math.max(peak, await rssAnon(server.pid))
			await Bun.sleep(100)
		}
		const pacedWhileRunning = await pacedInFlight(server)
		const received = downloads.reduce((sum, d) => sum + d.received, 0)
		for (const d of downloads) d.abort()
		// Every paced body ends with its client.
		expect(
			await pollUntil(
				() => pacedInFlight(server),
				(n) => n === 0,
				3000,
			),
		).toBe(0)
		return { growth: peak - before, before, peak, pacedWhileRunning, received }
	} finally {
		await server.stop()
	}
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`

test(`${CLIENTS} clients paced at rate=${RATE} hold no more memory than ${CLIENTS} unpaced clients reading as slowly`, async () => {
	// Paced: each client reads whatever arrives; the service sends RATE bytes per second.
	const paced = await measure(`&rate=${RATE}`, () => {})
	// Unpaced, counted (a budget makes every body a counted stream, as a pace does); the clients read RATE bytes per second.
	// One use more than clients: the warm-up body's written bytes are not all given back.
	const slow = await measure(`&max_uses=${CLIENTS + 1}`, (d) => d.sip(RATE))
	console.log(
		`RssAnon growth with ${CLIENTS} clients over ${RUN_MS / 1000} s: paced ${mib(paced.growth)} (${mib(paced.before)} → ${mib(paced.peak)}), ` +
			`slow unpaced ${mib(slow.growth)} (${mib(slow.before)} → ${mib(slow.peak)}); received ${mib(paced.received)} paced, ${mib(slow.received)} slow`,
	)
	expect(paced.pacedWhileRunning).toBe(CLIENTS)
	expect(slow.pacedWhileRunning).toBe(0)
	// The pace held: at most the first chunk (16 KiB) at once, then RATE per second, per client.
	expect(paced.received).toBeLessThanOrEqual(CLIENTS * (16 * 1024 + (RATE * (RUN_MS + 1500)) / 1000))
	// Within the slow clients' bound, give or take the noise of a garbage-collected heap.
	expect(paced.growth).toBeLessThanOrEqual(slow.growth + 4 * MiB)
}, 60_000)
