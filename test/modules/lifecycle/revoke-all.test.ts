import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Redis } from 'ioredis'
import { record } from '../../store/contract'
import {
	API_KEY,
	bearer,
	downloadPath,
	type IssueBody,
	makeTestApp,
	serviceEnv,
	type TestApp,
} from '../../support/helpers'
import { pollUntil } from '../../support/poll'
import { type RedisServer, startRedisServer } from '../../support/redis-server'
import { startServerProcess } from '../../support/server-process'
import { seedTokens } from './seed'

// Revoke-all of 50,000 tokens never holds Redis for long (docs/contract.md §3.3): on a redis-server of
// its own, every command of the run is in SLOWLOG (slowlog-log-slower-than 0, so the scripts' own inner
// commands too, which only makes each script look slower), and another user's downloads keep flowing.

const key = { 'X-API-Key': API_KEY }
const COUNT = 50_000
/** The longest a step of a revoke-all may hold Redis, and the most another user's download may be held up by it. */
const BOUND_MS = 10
/**
 * This machine is shared: now and then a redis-server is held up for tens of
 * milliseconds whatever it runs (a 25-token step, which takes ~1 ms, was
 * logged at 36-38 ms, up to 4 times in a run of 2,000 during the full suite).
 * So 99 steps in 100 must stay under the bound, and no command at all may
 * reach this; a step of all the tokens, or of 200, fails either way.
 */
const STALL_MS = 100

/** One SLOWLOG entry: id, unix time, microseconds, the command's arguments (at most 32, long ones cut). */
type SlowEntry = [number, number, number, string[], ...unknown[]]

/** Median, 99th percentile and maximum of `ms`, to a tenth of a millisecond. */
function stats(ms: readonly number[]): { p50: number; p99: number; max: number } {
	const sorted = [...ms].sort((a, b) => a - b)
	const at = (q: number) => Math.round((sorted[Math.floor((sorted.length - 1) * q)] ?? 0) * 10) / 10
	return { p50: at(0.5), p99: at(0.99), max: at(1) }
}

interface Run<T> {
	readonly result: T
	readonly entries: SlowEntry[]
	readonly ms: number
}

describe('revoke-all over 50,000 tokens (a redis-server of its own, every command in SLOWLOG)', () => {
	let redis: RedisServer
	let reader: Redis
	let t: TestApp
	const keyOf = (name: string, user: string) => `${t.config.redisKeyPrefix}${name}:{${user}}`
	const revokeAll = (path: string) => t.request(path, { method: 'DELETE', headers: key })
	const revokedBy = async (res: Response) => {
		expect(res.status).toBe(200)
		return ((await res.json()) as { revoked: number }).revoked
	}
	const seed = (user: string, fileOf: (i: number) => string, count = COUNT) =>
		seedTokens(t.deps.store, count, (i) => record(t.clock, { userId: user, filename: fileOf(i) }))

	/** Runs `work` with every command logged, and hands back the log of exactly that run. */
	async function logged<T>(work: () => Promise<T>): Promise<Run<T>> {
		// Reset first: freeing a long log is itself slow, and must not be logged as this run's.
		await redis.query(['SLOWLOG', 'RESET'], 5000)
		await redis.query(['CONFIG', 'SET', 'slowlog-log-slower-than', '0'])
		const started = performance.now()
		const result = await work()
		const ms = Math.round(performance.now() - started)
		await redis.query(['CONFIG', 'SET', 'slowlog-log-slower-than', '-1'])
		// Hundreds of thousands of entries: read with a client that parses them fast.
		const entries = (await reader.call('SLOWLOG', 'GET', '-1')) as SlowEntry[]
		await redis.query(['SLOWLOG', 'RESET'], 5000)
		// Nothing fell off the log: its ids run without a gap from the reset.
		const ids = entries.map((e) => e[0])
		const span = ids.reduce((a, b) => Math.max(a, b), 0) - ids.reduce((a, b) => Math.min(a, b), Infinity) + 1
		expect(span).toBe(entries.length)
		expect(entries.length).toBeLessThan(2_000_000)
		return { result, entries, ms }
	}
	/** 99 in 100 of `user`'s revoke steps under the bound, and no command of the run held Redis for STALL_MS. */
	const expectShort = (entries: readonly SlowEntry[], user: string) => {
		expect(stepP99(entries, user)).toBeLessThan(BOUND_MS * 1000)
		expect(longest(entries)?.[2] ?? Number.POSITIVE_INFINITY).toBeLessThan(STALL_MS * 1000)
	}
	/** The 99th percentile of how long `user`'s revoke steps held Redis, in µs. */
	const stepP99 = (entries: readonly SlowEntry[], user: string) => {
		const steps = revokeScripts(entries, user)
			.map((e) => e[2])
			.sort((a, b) => a - b)
		return steps[Math.floor((steps.length - 1) * 0.99)] ?? Number.POSITIVE_INFINITY
	}
	const longest = (entries: readonly SlowEntry[]) =>
		entries.reduce<SlowEntry | undefined>((a, e) => (a === undefined || e[2] > a[2] ? e : a), undefined)
	const show = (e: SlowEntry | undefined) =>
		e === undefined ? 'none' : `${e[2]} µs ${e[3].slice(0, 4).join(' ').slice(0, 120)}`
	/** Revoke scripts run for `user`: EVALSHA/EVAL calls whose first key is that user's expiry index. */
	const revokeScripts = (entries: readonly SlowEntry[], user: string) =>
		entries.filter((e) => /^eval/i.test(e[3][0] ?? '') && e[3][3] === keyOf('ue', user))

	/** Tokens the logged revoke scripts of `user` went through (their keys: both indexes, a record each, the event stream). */
	const tokensWalked = (entries: readonly SlowEntry[], user: string) =>
		revokeScripts(entries, user).reduce((n, e) => n + Number(e[3][2]) - 3, 0)

	beforeAll(async () => {
		redis = await startRedisServer({ args: ['--slowlog-log-slower-than', '-1', '--slowlog-max-len', '2000000'] })
		reader = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
		await reader.connect()
		t = await makeTestApp({
			env: {
				REDIS_URL: redis.url,
				API_KEYS: API_KEY,
				RATE_LIMIT_ISSUE: '100000/min',
				MAX_LIVE_TOKENS_PER_USER: '1000000',
			},
		})
		for (const user of ['bulk', 'mixed', 'other']) {
			await t.putFile(user, 'a.mp4', 'aaaa')
			await t.putFile(user, 'b.mp4', 'bbbb')
		}
	})
	afterAll(async () => {
		await t?.close()
		reader?.disconnect()
		await redis?.stop()
	})

	test('a user’s 50,000: steps under 10 ms, another user’s downloads not held up, all revoked once', async () => {
		const seeded = await seed('bulk', () => 'a.mp4')
		const real = await t.issue('bulk', 'a.mp4')
		// Two more instances on the same Redis, as deployed: one revokes, the other serves another user's
		// downloads. The test process only sends requests, so what it times is what the instances answer.
		const env = serviceEnv(t.storageDir, {
			REDIS_URL: redis.url,
			REDIS_KEY_PREFIX: t.config.redisKeyPrefix,
			API_KEYS: API_KEY,
			MAX_LIVE_TOKENS_PER_USER: '1000000',
		})
		const [revoker, server] = await Promise.all([startServerProcess(env), startServerProcess(env)])
		try {
			const issued = await fetch(`${server.url}/api/get-download-token/other/b.mp4?max_uses=1000000`, { headers: key })
			const { token } = (await issued.json()) as IssueBody
			const download = async () => {
				const started = performance.now()
				const res = await fetch(`${server.url}${downloadPath('other', 'b.mp4')}`, { headers: bearer(token) })
				const body = await res.text()
				return { status: res.status, body, ms: performance.now() - started }
			}
			for (let i = 0; i < 50; i++) await download() // warm-up
			const baseline: number[] = []
			for (let i = 0; i < 200; i++) baseline.push((await download()).ms)

			const during: { status: number; body: string; ms: number }[] = []
			const run = await logged(async () => {
				let done = false
				const revoking = fetch(`${revoker.url}/api/users/bulk/tokens`, { method: 'DELETE', headers: key }).finally(
					() => {
						done = true
					},
				)
				while (!done) during.push(await download())
				return revokedBy(await revoking)
			})
			const figures = {
				seedMs: seeded.ms,
				revokeAllMs: run.ms,
				commandsLogged: run.entries.length,
				revokeScripts: revokeScripts(run.entries, 'bulk').length,
				longest: show(longest(run.entries)),
				overBound: run.entries.filter((e) => e[2] >= BOUND_MS * 1000).length,
				stepP99Us: stepP99(run.entries, 'bulk'),
				longestRevokeScript: show(longest(revokeScripts(run.entries, 'bulk'))),
				downloads: during.length,
				baselineMs: stats(baseline),
				duringMs: stats(during.map((d) => d.ms)),
			}
			console.log('revoke-all of 50,000:', JSON.stringify(figures))

			expect(run.result).toBe(COUNT + 1)
			// Every token went through a logged step, and the steps held Redis for well under 10 ms.
			expect(tokensWalked(run.entries, 'bulk')).toBe(COUNT + 1)
			expectShort(run.entries, 'bulk')
			// Downloads ran all along, each served, and the typical one not held up by more than the bound.
			// (Single downloads on this shared 2-core machine take up to ~200 ms now and then with Redis
			// idle, so the tail is reported, not asserted: each command's bound above is what caps it.)
			expect(during.length).toBeGreaterThan(50)
			expect(during.filter((d) => d.status !== 200 || d.body !== 'bbbb')).toEqual([])
			expect(figures.duringMs.p50).toBeLessThan(figures.baselineMs.p50 + BOUND_MS)
		} finally {
			await Promise.all([revoker.stop(), server.stop()])
		}

		expect(await revokedBy(await revokeAll('/api/users/bulk/tokens'))).toBe(0)
		expect(await (await t.request('/api/users/bulk/tokens', { headers: key })).json()).toEqual({
			tokens: [],
			next_cursor: null,
		})
		const refused = await t.request(downloadPath('bulk', 'a.mp4'), { headers: bearer(real.token) })
		expect(refused.status).toBe(401)
		expect(((await refused.json()) as { error: string }).error).toBe('token_revoked')
	}, 90_000)

	test('one file’s among 50,000: only that file’s are revoked, in steps as short; repeated, none', async () => {
		await seed('mixed', (i) => (i % 10 === 0 ? 'a.mp4' : 'b.mp4'))
		const a = await t.issue('mixed', 'a.mp4')
		const b = await t.issue('mixed', 'b.mp4')
		const run = await logged(async () => revokedBy(await revokeAll('/api/users/mixed/files/a.mp4/tokens')))
		console.log(
			'revoke-file among 50,000:',
			JSON.stringify({
				revokeMs: run.ms,
				revokeScripts: revokeScripts(run.entries, 'mixed').length,
				longest: show(longest(run.entries)),
				overBound: run.entries.filter((e) => e[2] >= BOUND_MS * 1000).length,
				stepP99Us: stepP99(run.entries, 'mixed'),
			}),
		)
		expect(run.result).toBe(COUNT / 10 + 1)
		expect(tokensWalked(run.entries, 'mixed')).toBe(COUNT + 2)
		expectShort(run.entries, 'mixed')
		expect(await revokedBy(await revokeAll('/api/users/mixed/files/a.mp4/tokens'))).toBe(0)

		const files = new Map<string, number>()
		let cursor: string | null = null
		do {
			const query: string = cursor === null ? '?limit=1000' : `?limit=1000&cursor=${cursor}`
			const page = (await (await t.request(`/api/users/mixed/tokens${query}`, { headers: key })).json()) as {
				tokens: { filename: string }[]
				next_cursor: string | null
			}
			for (const x of page.tokens) files.set(x.filename, (files.get(x.filename) ?? 0) + 1)
			cursor = page.next_cursor
		} while (cursor !== null)
		expect(Object.fromEntries(files)).toEqual({ 'b.mp4': COUNT - COUNT / 10 + 1 })
		const refused = await t.request(downloadPath('mixed', 'a.mp4'), { headers: bearer(a.token) })
		expect(((await refused.json()) as { error: string }).error).toBe('token_revoked')
		expect((await t.request(downloadPath('mixed', 'b.mp4'), { headers: bearer(b.token) })).status).toBe(200)
	}, 90_000)

	test('a revoke-all cut off half-way (every connection dropped, as in a failover) is finished by repeating it', async () => {
		const live = 20_000
		await seed('cut', () => 'a.mp4', live)
		const index = keyOf('ul', 'cut')
		const card = async () => Number(await redis.query(['ZCARD', index]))
		expect(await card()).toBe(live)
		const first = revokeAll('/api/users/cut/tokens')
		// Once some batches went through, every client connection is dropped: the batch running finishes
		// (a script is atomic), the next one fails.
		const partway = await pollUntil(card, (n) => n < live - 2000, 10_000, 2)
		expect(partway).toBeLessThan(live - 2000)
		await redis.query(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'])
		const cut = await first
		expect(cut.status).toBe(503)
		expect(((await cut.json()) as { error: string }).error).toBe('store_unavailable')
		const left = await card()
		expect(left).toBeGreaterThan(0)
		expect(left).toBeLessThan(live - 2000)

		// The app reconnects by itself; repeating revokes exactly what was left, then nothing.
		const again = await pollUntil(
			() => revokeAll('/api/users/cut/tokens'),
			(res) => res.status !== 503,
			3000,
			50,
		)
		expect(await revokedBy(again)).toBe(left)
		expect(await card()).toBe(0)
		expect(await revokedBy(await revokeAll('/api/users/cut/tokens'))).toBe(0)
	}, 60_000)
})
