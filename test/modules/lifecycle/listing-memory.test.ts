import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { createRedisTokenStore } from '../../../src/store/redis'
import { record } from '../../store/contract'
import { API_KEY, fakeClock, serviceEnv } from '../../support/helpers'
import { type ServerProcess, startServerProcess } from '../../support/server-process'
import { seedTokens } from './seed'

// A user with 50,000 live tokens, listed whole by 20 clients at once, a page of 1,000 at a time, from
// the service as deployed: what the service holds is bounded by the pages in flight, not by the tokens,
// as its anonymous memory (its heap, not mapped files) shows.
//
// How much garbage the collector lets pile up between collections is JSC's choice, paced against the
// machine's RAM: Bun gives JSC the cgroup's memory limit as that RAM (oven-sh/bun#5849), so in a
// container limited to 256 MiB the heap is kept tight, and on a host with no limit (24 GiB here) it is not.
// The test runs both: the first with BUN_JSC_forceRAMSize, the value Bun sets from such a limit
// (checked against a real cgroup v1 memory limit on this machine: bench/results/profiles/2026-12-06-listing-memory.md).

const COUNT = 50_000
const CLIENTS = 20
const PAGE = 1000
const MiB = 1024 * 1024

/** The two ways the service meets the collector, and how far its anonymous memory may rise in each. */
const HEAPS = [
	{
		name: 'in a container limited to 256 MiB',
		env: { BUN_JSC_forceRAMSize: String(256 * MiB) },
		// Pages in flight and what the collector has not taken yet: measured 3-8 MiB on a quiet
		// machine, up to 14 with a CPU hog beside it and 18 once in a full CI run; 39 with no
		// bound on pages built at once.
		allowedGrowth: 24 * MiB,
	},
	{
		name: 'on a host with no memory limit',
		env: {},
		// Mostly garbage the collector, pacing itself against the host's RAM, has not taken yet:
		// measured 33-46 MiB, against 111 with no bound on pages built at once, and 215 with
		// neither that bound nor the store's chunked read of a page.
		allowedGrowth: 64 * MiB,
	},
] as const

/** RssAnon of `pid` in bytes (Linux /proc): the heap and other private memory, not mapped files. */
async function rssAnon(pid: number): Promise<number> {
	const status = await Bun.file(`/proc/${pid}/status`).text()
	const kb = /RssAnon:\s+(\d+) kB/.exec(status)?.[1]
	if (kb === undefined) throw new Error(`no RssAnon in /proc/${pid}/status`)
	return Number(kb) * 1024
}

const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10

describe('listing 50,000 tokens, 20 clients at once (the service as a process)', () => {
	let client: Redis
	let storage: string
	let seedMs = 0
	let env: Record<string, string>

	beforeAll(async () => {
		storage = await mkdtemp(join(tmpdir(), 'dlg-listing-'))
		env = serviceEnv(storage, { API_KEYS: API_KEY })
		client = new Redis(process.env.TEST_REDIS_URL ?? '')
		// Written through the store's own create (record, both indexes), on the service's clock and key prefix.
		const clock = fakeClock(Date.now())
		const store = createRedisTokenStore(client, { prefix: env.REDIS_KEY_PREFIX ?? '', clock: clock.now })
		seedMs = (await seedTokens(store, COUNT, () => record(clock, { userId: 'many' }))).ms
	}, 60_000)
	afterAll(async () => {
		client?.disconnect()
		await rm(storage, { recursive: true, force: true })
	}, 30_000)

	/** Every page of the user's listing, `PAGE` at a time; the jtis in the order served. */
	async function listAll(server: ServerProcess): Promise<string[]> {
		const jtis: string[] = []
		let cursor: string | null = null
		for (let pages = 0; pages < 1000; pages++) {
			const query: string = cursor === null ? `?limit=${PAGE}` : `?limit=${PAGE}&cursor=${cursor}`
			const res = await fetch(`${server.url}/api/users/many/tokens${query}`, { headers: { 'X-API-Key': API_KEY } })
			if (res.status !== 200) throw new Error(`page ${pages} answered ${res.status}: ${await res.text()}`)
			const page = (await res.json()) as { tokens: { jti: string }[]; next_cursor: string | null }
			jtis.push(...page.tokens.map((x) => x.jti))
			cursor = page.next_cursor
			if (cursor === null) return jtis
		}
		throw new Error('the listing never ended')
	}

	test.each(HEAPS)(
		'$name: anonymous memory stays bounded by the pages in flight, whatever the count of tokens',
		async (heap) => {
			const server = await startServerProcess({ ...env, ...heap.env })
			try {
				await listConcurrently(server, heap.name, heap.allowedGrowth)
			} finally {
				await server.stop()
			}
		},
		120_000,
	)

	async function listConcurrently(server: ServerProcess, name: string, allowedGrowth: number): Promise<void> {
		const cold = await rssAnon(server.pid)
		// One listing first, alone: code compiled, connection and allocator pools in place.
		const warmStarted = performance.now()
		expect(new Set(await listAll(server)).size).toBe(COUNT)
		const oneListingMs = Math.round(performance.now() - warmStarted)
		const before = await rssAnon(server.pid)

		let peak = before
		let samples = 0
		const sampler = setInterval(async () => {
			peak = Math.max(peak, await rssAnon(server.pid).catch(() => 0))
			samples++
		}, 10)
		const started = performance.now()
		const listings = await Promise.all(Array.from({ length: CLIENTS }, () => listAll(server)))
		const concurrentMs = Math.round(performance.now() - started)
		clearInterval(sampler)
		const after = await rssAnon(server.pid)

		const figures = {
			seedMs,
			oneListingMs,
			concurrentMs,
			samples,
			rssAnonMiB: { cold: mib(cold), before: mib(before), peak: mib(peak), after: mib(after) },
		}
		console.log(`${name}: ${CLIENTS} listings of ${COUNT} at once, ${PAGE} a page:`, JSON.stringify(figures))
		for (const jtis of listings) {
			expect(jtis).toHaveLength(COUNT)
			expect(new Set(jtis).size).toBe(COUNT)
		}
		expect(samples).toBeGreaterThan(10)
		expect(peak - before).toBeLessThan(allowedGrowth)
	}
})
