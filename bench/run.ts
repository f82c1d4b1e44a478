// `bun run bench`: every scenario of the performance issue, on loopback, with
// a plain Bun.file server measured in the same run as the upper bound.
// Targets are interleaved A/B/A/B; medians and ratios go to
// bench/results/<date>.md. Options: --quick (short runs, one round),
// --only=2,3 (scenario numbers).

import { mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { Redis } from 'ioredis'
import { freePort, type RedisServer, startRedisServer } from '../test/redis-server'

const args = new Set(process.argv.slice(2))
const QUICK = args.has('--quick')
const ONLY = [...args]
	.find((a) => a.startsWith('--only='))
	?.slice(7)
	.split(',')
	.map(Number)
const wants = (n: number) => !ONLY || ONLY.includes(n)
const DURATION_S = QUICK ? 3 : 8
const ROUNDS = QUICK ? 1 : 3
const ROOT = join(import.meta.dir, '..')
const DATA = join(import.meta.dir, '.data')
const STORAGE = join(DATA, 'storage')
const API_KEY = 'bench-api-key-0123456789abcdef'
const SECRET = 'bench-secret-0123456789abcdef0123456789'
const MiB = 1024 * 1024
const USERS = 100

// ---------------------------------------------------------------- helpers

const median = (xs: number[]) => {
	const s = [...xs].sort((a, b) => a - b)
	const m = Math.floor(s.length / 2)
	return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}
const fmt = (n: number, digits = 0) =>
	n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
/** Every run behind a median, in order, so the spread of a noisy machine shows. */
const runsNote = (xs: number[]) => `runs ${xs.map((x) => fmt(x)).join(' / ')}`
const log = (...parts: unknown[]) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...parts)

async function sh(cmd: string[]): Promise<string> {
	const p = Bun.spawn(cmd, { stdout: 'pipe', stderr: 'pipe' })
	const out = await new Response(p.stdout).text()
	await p.exited
	return out
}

async function waitHealthy(url: string) {
	for (let i = 0; i < 200; i++) {
		try {
			if ((await fetch(`${url}/health`)).ok) return
		} catch {}
		await Bun.sleep(25)
	}
	throw new Error(`${url} did not come up`)
}

async function rssOfTree(pid: number): Promise<number> {
	// The service with WORKERS=2 is a parent and a child: sum both.
	const pids = [pid, ...(await sh(['pgrep', '-P', String(pid)])).split('\n').filter(Boolean).map(Number)]
	let total = 0
	for (const p of pids) {
		const status = await Bun.file(`/proc/${p}/status`)
			.text()
			.catch(() => '')
		total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024
	}
	return total
}

interface Target {
	readonly url: string
	readonly pid: number
	stop(): Promise<void>
}

async function startService(redisUrl: string, workers: number, extra: Record<string, string> = {}): Promise<Target> {
	const port = freePort()
	const child = Bun.spawn(['bun', 'src/index.ts'], {
		cwd: ROOT,
		env: {
			PATH: process.env.PATH ?? '',
			HOME: process.env.HOME ?? '/tmp',
			NODE_ENV: 'production',
			PORT: String(port),
			HOST: '127.0.0.1',
			WORKERS: String(workers),
			JWT_SECRET: SECRET,
			REDIS_URL: redisUrl,
			API_KEYS: API_KEY,
			ISSUE_AUTH: 'api-key',
			STORAGE_DIR: STORAGE,
			// The bench issues thousands of tokens per second for 100 users; the limit would answer 429.
			RATE_LIMIT_ISSUE: '100000000/min',
			...extra,
		},
		stdout: 'ignore',
		stderr: 'inherit',
	})
	const url = `http://127.0.0.1:${port}`
	await waitHealthy(url)
	if (workers > 1) await Bun.sleep(1500) // let the other workers bind the port
	return {
		url,
		pid: child.pid,
		stop: async () => {
			child.kill('SIGTERM')
			await child.exited
		},
	}
}

async function startBaseline(processes: number): Promise<Target> {
	const port = freePort()
	const children: Subprocess[] = []
	for (let i = 0; i < processes; i++)
		children.push(
			Bun.spawn(['bun', 'bench/baseline.ts'], {
				cwd: ROOT,
				env: { PATH: process.env.PATH ?? '', PORT: String(port), BASELINE_DIR: STORAGE },
				stdout: 'ignore',
				stderr: 'inherit',
			}),
		)
	const url = `http://127.0.0.1:${port}`
	for (let i = 0; i < 200; i++) {
		try {
			if ((await fetch(`${url}/api/download/u0/small.mp4`)).ok) break
		} catch {}
		await Bun.sleep(25)
	}
	await Bun.sleep(500)
	return {
		url,
		pid: children[0]?.pid ?? 0,
		stop: async () => {
			for (const c of children) c.kill('SIGTERM')
			await Promise.all(children.map((c) => c.exited))
		},
	}
}

interface WrkResult {
	rps: number
	p50Ms: number
	p99Ms: number
	non2xx: number
	errors: number
	requests: number
}

async function wrk(
	url: string,
	opts: { connections: number; header?: [string, string]; rotateUsers?: number; seconds?: number },
): Promise<WrkResult> {
	const p = Bun.spawn(
		[
			'wrk',
			'-t2',
			`-c${opts.connections}`,
			`-d${opts.seconds ?? DURATION_S}s`,
			'--timeout',
			'5s',
			'-s',
			join(import.meta.dir, 'wrk', 'request.lua'),
			url,
		],
		{
			env: {
				PATH: process.env.PATH ?? '',
				...(opts.header ? { BENCH_HEADER_NAME: opts.header[0], BENCH_HEADER_VALUE: opts.header[1] } : {}),
				...(opts.rotateUsers ? { BENCH_ROTATE_USERS: String(opts.rotateUsers) } : {}),
			},
			stdout: 'pipe',
			stderr: 'pipe',
		},
	)
	const out = await new Response(p.stdout).text()
	await p.exited
	const json = /BENCH_JSON (\{.*\})/.exec(out)?.[1]
	if (!json) throw new Error(`wrk gave no result for ${url}:\n${out}`)
	const r = JSON.parse(json) as Record<string, number>
	const requests = r.requests ?? 0
	return {
		requests,
		rps: requests / ((r.duration_us ?? 1) / 1e6),
		p50Ms: (r.p50_us ?? 0) / 1000,
		p99Ms: (r.p99_us ?? 0) / 1000,
		non2xx: r.non2xx ?? 0,
		errors: r.errors ?? 0,
	}
}

/** Parallel curl downloads of one URL; returns MB/s over all of them. */
async function curlThroughput(url: string, parallel: number, header?: string): Promise<number> {
	const started = performance.now()
	const runs = Array.from({ length: parallel }, () =>
		sh(['curl', '-s', '-o', '/dev/null', '-w', '%{size_download}', ...(header ? ['-H', header] : []), url]),
	)
	const sizes = (await Promise.all(runs)).map(Number)
	const seconds = (performance.now() - started) / 1000
	return sizes.reduce((a, b) => a + b, 0) / 1e6 / seconds
}

// ---------------------------------------------------------------- data

async function ensureFile(path: string, bytes: number) {
	const existing = await stat(path).catch(() => null)
	if (existing?.size === bytes) return
	log(`writing ${path} (${fmt(bytes / MiB)} MiB of random bytes)`)
	await sh(['sh', '-c', `head -c ${bytes} /dev/urandom > '${path}'`])
}

async function prepareData(needHuge: boolean) {
	await mkdir(join(STORAGE, 'u0'), { recursive: true })
	await ensureFile(join(STORAGE, 'u0', 'small.mp4'), 64 * 1024)
	await ensureFile(join(STORAGE, 'u0', 'big.mp4'), 1024 * MiB)
	if (needHuge) await ensureFile(join(STORAGE, 'u0', 'huge.mp4'), 4096 * MiB)
	// Users u1..u99 see the same small file through a symlink inside storage.
	for (let i = 1; i < USERS; i++) {
		const dir = join(STORAGE, `u${i}`)
		await mkdir(dir, { recursive: true })
		if (!(await readdir(dir)).includes('small.mp4')) await symlink('../u0/small.mp4', join(dir, 'small.mp4'))
	}
}

async function issue(base: string, user: string, file: string, query = ''): Promise<{ token: string; jti: string }> {
	const res = await fetch(`${base}/api/get-download-token/${user}/${file}${query}`, {
		headers: { 'X-API-Key': API_KEY },
	})
	if (!res.ok) throw new Error(`issue ${res.status}: ${await res.text()}`)
	return (await res.json()) as { token: string; jti: string }
}

/** Writes `count` live token records the way the store does, pipelined. */
async function preloadTokens(redisUrl: string, from: number, to: number) {
	const redis = new Redis(redisUrl)
	const now = Math.floor(Date.now() / 1000)
	for (let start = from; start < to; start += 5000) {
		const pipeline = redis.pipeline()
		for (let i = start; i < Math.min(to, start + 5000); i++) {
			const user = `p${i % 10_000}`
			const key = `dlg:t:{${user}}:preload${i}`
			pipeline.hset(key, 'f', 'small.mp4', 'i', now, 'e', now + 3600, 'm', 1, 'b', 65536, 'a', 65536)
			pipeline.pexpire(key, 3_600_000)
			pipeline.zadd(`dlg:u:{${user}}`, now + 3600, `preload${i}`)
		}
		await pipeline.exec()
	}
	const keys = await redis.dbsize()
	await redis.quit()
	return keys
}

// ---------------------------------------------------------------- scenarios

interface Row {
	scenario: string
	metric: string
	service: number
	baseline?: number
	ratio?: number
	target?: string
	pass?: boolean
	note?: string
}
const rows: Row[] = []

function record(row: Row) {
	rows.push(row)
	const ratio = row.ratio === undefined ? '' : ` ratio ${row.ratio.toFixed(2)}`
	log(
		`${row.scenario} | ${row.metric}: ${fmt(row.service, 1)}${row.baseline === undefined ? '' : ` vs ${fmt(row.baseline, 1)}`}${ratio}${row.pass === undefined ? '' : row.pass ? ' PASS' : ' FAIL'}`,
	)
}

async function downloadScenarios(redis: RedisServer, workers: number) {
	const service = await startService(redis.url, workers)
	const baseline = await startBaseline(workers)
	const unlimited = await issue(service.url, 'u0', 'small.mp4', '?ttl=86400')
	const budgeted = await issue(service.url, 'u0', 'small.mp4', '?ttl=86400&max_uses=1000000')
	const revoked = await issue(service.url, 'u0', 'small.mp4', '?ttl=86400')
	await fetch(`${service.url}/api/users/u0/tokens/${revoked.jti}`, {
		method: 'DELETE',
		headers: { 'X-API-Key': API_KEY },
	})
	const forged = `${unlimited.token.slice(0, -4)}AAAA`
	const path = '/api/download/u0/small.mp4'
	const auth = (t: string): [string, string] => ['Authorization', `Bearer ${t}`]

	const runs: Record<string, WrkResult[]> = { base: [], unlimited: [], budgeted: [], forged: [], revoked: [] }
	for (let round = 0; round < ROUNDS; round++) {
		runs.base?.push(await wrk(`${baseline.url}${path}`, { connections: 64 }))
		if (wants(2))
			runs.unlimited?.push(await wrk(`${service.url}${path}`, { connections: 64, header: auth(unlimited.token) }))
		if (wants(3))
			runs.budgeted?.push(await wrk(`${service.url}${path}`, { connections: 64, header: auth(budgeted.token) }))
		if (wants(6)) {
			runs.forged?.push(await wrk(`${service.url}${path}`, { connections: 64, header: auth(forged) }))
			runs.revoked?.push(await wrk(`${service.url}${path}`, { connections: 64, header: auth(revoked.token) }))
		}
	}
	const base = median((runs.base ?? []).map((r) => r.rps))
	const tag = `${workers} process${workers > 1 ? 'es' : ''}`
	record({
		scenario: `0. baseline Bun.file 64 KiB, c=64, ${tag}`,
		metric: 'req/s',
		service: base,
		note: runsNote((runs.base ?? []).map((r) => r.rps)),
	})
	const report = (name: string, key: string, target: number, scenario: string, expectStatus: 'ok' | 'refused') => {
		const list = runs[key] ?? []
		if (list.length === 0) return
		const rps = median(list.map((r) => r.rps))
		const bad = list.reduce((a, r) => a + (expectStatus === 'ok' ? r.non2xx : r.requests - r.non2xx) + r.errors, 0)
		record({
			scenario: `${scenario}, ${tag}`,
			metric: `req/s (p50 ${median(list.map((r) => r.p50Ms)).toFixed(2)} ms, p99 ${median(list.map((r) => r.p99Ms)).toFixed(2)} ms)`,
			service: rps,
			baseline: base,
			ratio: rps / base,
			target: `≥ ${target}× baseline`,
			pass: rps / base >= target && bad === 0,
			note: [bad ? `${bad} unexpected answers` : name, runsNote(list.map((r) => r.rps))].filter(Boolean).join('; '),
		})
	}
	report('', 'unlimited', 0.7, '2. download 64 KiB, unlimited token, c=64', 'ok')
	report('', 'budgeted', 0.7, '3. download 64 KiB, max_uses token, c=64', 'ok')
	report('', 'forged', 1, '6a. refusal: bad signature, c=64', 'refused')
	report('', 'revoked', 1, '6b. refusal: revoked jti, c=64', 'refused')
	await service.stop()
	await baseline.stop()
	return median((runs.unlimited ?? []).map((r) => r.rps))
}

async function issuanceScenario(redis: RedisServer) {
	const service = await startService(redis.url, 1)
	const list: WrkResult[] = []
	for (let round = 0; round < ROUNDS; round++)
		list.push(
			await wrk(`${service.url}/api/get-download-token/{user}/small.mp4?ttl=60`, {
				connections: 64,
				header: ['X-API-Key', API_KEY],
				rotateUsers: USERS,
			}),
		)
	record({
		scenario: '1. token issuance (sign + Redis write), c=64, 100 users',
		metric: `req/s (p50 ${median(list.map((r) => r.p50Ms)).toFixed(2)} ms, p99 ${median(list.map((r) => r.p99Ms)).toFixed(2)} ms)`,
		service: median(list.map((r) => r.rps)),
		note: `${list.reduce((a, r) => a + r.non2xx + r.errors, 0)} errors`,
	})
	await service.stop()
}

async function throughputScenario(redis: RedisServer) {
	const service = await startService(redis.url, 1)
	const baseline = await startBaseline(1)
	const unlimited = await issue(service.url, 'u0', 'big.mp4', '?ttl=86400')
	const budgeted = await issue(service.url, 'u0', 'big.mp4', '?ttl=86400&max_uses=1000')
	const url = (base: string) => `${base}/api/download/u0/big.mp4`
	const results: Record<'base' | 'unlimited' | 'budgeted', number[]> = { base: [], unlimited: [], budgeted: [] }
	await curlThroughput(url(baseline.url), 1) // warm the page cache
	for (let round = 0; round < ROUNDS; round++) {
		results.base.push(await curlThroughput(url(baseline.url), 4))
		results.unlimited.push(await curlThroughput(url(service.url), 4, `Authorization: Bearer ${unlimited.token}`))
		results.budgeted.push(await curlThroughput(url(service.url), 4, `Authorization: Bearer ${budgeted.token}`))
	}
	const base = median(results.base)
	record({ scenario: '0. baseline Bun.file 1 GiB × 4 parallel curl', metric: 'MB/s', service: base })
	for (const [key, target] of [
		['unlimited', 0.9],
		['budgeted', 0.5],
	] as const) {
		const mbps = median(results[key])
		record({
			scenario: `4. 1 GiB × 4 parallel curl, ${key} token`,
			metric: 'MB/s',
			service: mbps,
			baseline: base,
			ratio: mbps / base,
			target: `≥ ${target}× baseline`,
			pass: mbps / base >= target,
		})
	}
	await service.stop()
	await baseline.stop()
}

async function slowClientsScenario(redis: RedisServer, file: 'big.mp4' | 'huge.mp4') {
	for (const kind of ['unlimited', 'budgeted'] as const) {
		const service = await startService(redis.url, 1)
		const { token } = await issue(
			service.url,
			'u0',
			file,
			kind === 'budgeted' ? '?ttl=86400&max_uses=1000' : '?ttl=86400',
		)
		const idle = await rssOfTree(service.pid)
		let peak = idle
		const sampler = setInterval(async () => {
			peak = Math.max(peak, await rssOfTree(service.pid))
		}, 50)
		const seconds = QUICK ? 4 : 10
		const clients = Array.from({ length: 100 }, () =>
			sh([
				'curl',
				'-s',
				'-o',
				'/dev/null',
				'--limit-rate',
				'1M',
				'--max-time',
				String(seconds),
				'-H',
				`Authorization: Bearer ${token}`,
				`${service.url}/api/download/u0/${file}`,
			]),
		)
		await Promise.all(clients)
		clearInterval(sampler)
		const size = file === 'big.mp4' ? '1 GiB' : '4 GiB'
		record({
			scenario: `5. 100 slow clients (1 MB/s each, ${seconds} s) on the ${size} file, ${kind} token`,
			metric: 'peak RSS MiB',
			service: peak / MiB,
			target: '≤ 100 MiB',
			pass: peak / MiB <= 100,
			note: `idle ${fmt(idle / MiB, 1)} MiB`,
		})
		await service.stop()
	}
}

async function scalingScenario() {
	// One redis-server per population, measured in turns (A/B/C, A/B/C…), so
	// drift over the run does not favour either end.
	const populations = [10_000, 100_000, 1_000_000]
	const targets: { live: number; redis: RedisServer; service: Target; token: string }[] = []
	for (const live of populations) {
		const redis = await startRedisServer()
		log(`preloading ${fmt(live)} live tokens`)
		await preloadTokens(redis.url, 0, live)
		const service = await startService(redis.url, 1)
		const { token } = await issue(service.url, 'u0', 'small.mp4', '?ttl=86400')
		targets.push({ live, redis, service, token })
	}
	const results = new Map<number, number[]>(populations.map((p) => [p, []]))
	for (let round = 0; round < ROUNDS; round++)
		for (const t of targets)
			results.get(t.live)?.push(
				(
					await wrk(`${t.service.url}/api/download/u0/small.mp4`, {
						connections: 64,
						header: ['Authorization', `Bearer ${t.token}`],
					})
				).rps,
			)
	for (const t of targets) {
		await t.service.stop()
		await t.redis.stop()
	}
	const first = median(results.get(populations[0] ?? 0) ?? [])
	for (const live of populations) {
		const rps = median(results.get(live) ?? [])
		record({
			scenario: `7. download 64 KiB with ${fmt(live)} live tokens in Redis`,
			metric: 'req/s',
			service: rps,
			baseline: first,
			ratio: rps / first,
			target: live === 1_000_000 ? 'within 10 % of 10⁴' : undefined,
			pass: live === 1_000_000 ? rps / first >= 0.9 : undefined,
			note: runsNote(results.get(live) ?? []),
		})
	}
}

// ---------------------------------------------------------------- report

async function machine(): Promise<string> {
	const cpu = cpus()[0]?.model ?? 'unknown CPU'
	const [bunV, redisV, wrkV, kernel] = await Promise.all([
		sh(['bun', '--version']),
		sh(['redis-server', '--version']),
		sh(['sh', '-c', 'wrk --version 2>&1 | head -1']),
		sh(['uname', '-r']),
	])
	return `${cpus().length} × ${cpu}, ${fmt(totalmem() / 2 ** 30, 0)} GiB RAM, Linux ${kernel.trim()}, Bun ${bunV.trim()}, ${redisV.split(' ').slice(0, 3).join(' ')}, ${wrkV.split(' ').slice(0, 2).join(' ')}`
}

function markdown(env: string, started: Date): string {
	const lines = [
		`# download-gate benchmark, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
		'',
		`Machine: ${env}.`,
		'',
		`Everything on loopback: redis-server, the service (\`NODE_ENV=production\`, default \`LOG_LEVEL=info\`, so every download is access-logged), and a plain \`Bun.file\` server with no checks as the upper bound (\`bench/baseline.ts\`). wrk -t2 for ${DURATION_S} s per run, ${ROUNDS} interleaved round(s) (baseline, service, baseline, service…), medians reported; 1 GiB throughput with 4 parallel \`curl -o /dev/null\`. Reproduce with \`bun run bench\` (\`--quick\` for a short run).`,
		'',
		'| scenario | metric | service | baseline | ratio | target | result |',
		'|---|---|---:|---:|---:|---|---|',
		...rows.map(
			(r) =>
				`| ${r.scenario} | ${r.metric} | ${fmt(r.service, r.service < 1000 ? 1 : 0)} | ${r.baseline === undefined ? '' : fmt(r.baseline, r.baseline < 1000 ? 1 : 0)} | ${r.ratio === undefined ? '' : r.ratio.toFixed(2)} | ${r.target ?? ''} | ${r.pass === undefined ? (r.note ?? '') : `${r.pass ? 'pass' : '**fail**'}${r.note ? ` (${r.note})` : ''}`} |`,
		),
		'',
	]
	return lines.join('\n')
}

async function main() {
	const started = new Date()
	const env = await machine()
	log(env)
	await prepareData(wants(5) && !QUICK)
	const redis = await startRedisServer()
	try {
		if (wants(2) || wants(3) || wants(6)) {
			const one = await downloadScenarios(redis, 1)
			const two = await downloadScenarios(redis, 2)
			if (wants(2))
				record({
					scenario: '2. WORKERS=2 vs WORKERS=1 (64 KiB download)',
					metric: 'req/s',
					service: two,
					baseline: one,
					ratio: two / one,
					target: '≥ 1.5× one process',
					pass: two / one >= 1.5,
				})
		}
		if (wants(1)) await issuanceScenario(redis)
		if (wants(4)) await throughputScenario(redis)
		if (wants(5)) {
			await slowClientsScenario(redis, 'big.mp4')
			if (!QUICK) await slowClientsScenario(redis, 'huge.mp4')
		}
		if (wants(7)) await scalingScenario()
	} finally {
		await redis.stop()
	}
	const report = markdown(env, started)
	const file = join(import.meta.dir, 'results', `${started.toISOString().slice(0, 10)}${QUICK ? '-quick' : ''}.md`)
	await writeFile(file, report)
	console.log(`\n${report}\nwritten to ${file}`)
}

await main()
