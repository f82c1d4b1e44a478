// `bun run bench`: download-gate on loopback against the plain Bun.file
// server, nginx secure_link and a Fastify + ioredis fixture, interleaved
// A/B/A/B, with req/s, latency, CPU per request and peak memory per target.
// Results go to bench/results/<date>.md. See bench/README.md.
//
//   --quick              3 s runs, one round (default: 8 s, 3 rounds)
//   --only=a,b           scenario ids (see --list)
//   --rounds=N --seconds=N
//   --fastify=bun|node   runtime of the Fastify fixture (default bun)
//   --service=DIR        run download-gate from another checkout (e.g. a `git archive` of a commit)
//   --profile[=id]       run one scenario (default download-64k) with download-gate under
//                        `bun --cpu-prof`; profiles and their summaries go to bench/results/profiles/
//   --out=FILE           where to write the report
//   --list               print the scenario ids

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { cpus } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { BENCH_DIR, BenchContext, type BenchOptions, log, PROFILES, ROOT } from './lib/context'
import { type FileKind, prepareData } from './lib/data'
import { installCleanup, stopAll, which } from './lib/proc'
import { profileMarkdown } from './lib/profile'
import { startRedis } from './lib/redis'
import { sectionMarkdown } from './lib/report'
import { machine, nginxVersion } from './lib/versions'
import { SCENARIOS } from './scenarios'

function parseArgs(argv: string[]): BenchOptions & { list: boolean; out?: string; profileScenario?: string } {
	const flags = new Map<string, string>()
	for (const arg of argv) {
		const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
		if (!m?.[1]) throw new Error(`unknown argument ${arg} (see the top of bench/run.ts)`)
		flags.set(m[1], m[2] ?? '')
	}
	const known = ['quick', 'only', 'rounds', 'seconds', 'fastify', 'service', 'profile', 'out', 'list']
	for (const name of flags.keys()) if (!known.includes(name)) throw new Error(`unknown option --${name}`)
	const quick = flags.has('quick')
	const num = (name: string, fallback: number) => {
		const raw = flags.get(name)
		if (raw === undefined) return fallback
		const n = Number(raw)
		if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`)
		return n
	}
	const fastify = flags.get('fastify') ?? 'bun'
	if (fastify !== 'bun' && fastify !== 'node') throw new Error('--fastify must be bun or node')
	const profileScenario = flags.has('profile') ? flags.get('profile') || 'download-64k' : undefined
	const only = profileScenario ? [profileScenario] : (flags.get('only') ?? '').split(',').filter(Boolean)
	for (const id of only)
		if (!SCENARIOS.some((s) => s.id === id))
			throw new Error(`unknown scenario ${id}; one of ${SCENARIOS.map((s) => s.id).join(', ')}`)
	return {
		quick,
		seconds: num('seconds', quick ? 3 : 8),
		rounds: num('rounds', quick ? 1 : 3),
		only,
		profile: profileScenario !== undefined,
		profileScenario,
		fastifyRuntime: fastify,
		serviceDir: resolve(flags.get('service') || ROOT),
		list: flags.has('list'),
		out: flags.get('out'),
	}
}

/** The 1-minute load average, as the kernel prints it. */
const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?'

function header(ctx: BenchContext, env: string, args: string[]): string {
	const o = ctx.opts
	const nginx = nginxVersion()
	return [
		`# download-gate benchmark, ${ctx.started.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
		'',
		`Machine: ${env}.`,
		'',
		`Command: \`bun run bench${args.length ? ` ${args.join(' ')}` : ''}\`.`,
		'',
		`Everything on loopback, sharing the machine's cores with the load generator: redis-server; download-gate (\`bun src/index.ts\`, \`NODE_ENV=production\`, \`LOG_LEVEL=warn\`, so no access log); the plain \`Bun.file\` server with no checks (\`bench/targets/bun-file-server.ts\`); ${nginx ? `${nginx} with \`secure_link\` (\`sendfile on\`, \`access_log off\`, \`worker_processes\` = processes)` : 'nginx: not installed, skipped'}; and the Fastify + ioredis + jose fixture (\`bench/targets/fastify-fixture.ts\`) run with ${o.fastifyRuntime === 'bun' ? 'Bun' : 'Node (after `bun build --target=node`)'}, \`node:cluster\` for 2 processes; for the bucket scenarios, s3rver (\`bun node_modules/s3rver/bin/s3rver.js\`, one process) serving presigned GETs itself and the objects download-gate reads with \`S3_BUCKET\`. wrk -t2 for ${o.seconds} s per run after a 1 s warm-up, ${o.rounds} interleaved round(s) (A/B/C, A/B/C…), medians reported; large files with parallel \`curl -o /dev/null\`.`,
		'',
		`**CPU** is the user + system time of the server’s whole process tree (parent and workers, from \`/proc/<pid>/stat\`) between the start and the end of each run, divided by the requests served: on a shared machine it is steadier than req/s. **Redis CPU** is redis-server’s, for the targets that use it, and **s3rver CPU** the bucket’s, for download-gate on a bucket, per request served by the target. **Peak RSS**, **peak PSS** and **peak anon** are the peaks of the tree’s summed VmRSS, Pss (from \`/proc/<pid>/smaps_rollup\`: a page shared by n processes counts 1/n in each) and RssAnon (heaps, stacks, buffers), sampled every 100 ms (50 ms for slow clients). PSS splits the pages of the Bun binary with every Bun process on the machine, the bench’s own runner included, so it is lower when more of them run; what load adds shows in the anon column. Ratios are against the peer with the same number of processes; \`CPU ÷ x\` above 1 means more CPU per request than x. Each section ends with the load average around it: above ${cpus().length} (the cores), other work competed for the machine, and every figure, CPU per request included, is worse than on a quiet one.`,
		...(o.serviceDir === ROOT ? [] : ['', `download-gate was run from \`${o.serviceDir}\`, not this checkout.`]),
		...(o.profile
			? ['', '**Profiling run**: download-gate ran under `bun --cpu-prof`, so its figures are lower than usual.']
			: []),
		...[...ctx.notices].map((n) => `\n**Note:** ${n}.`),
		'',
	].join('\n')
}

async function main(): Promise<number> {
	const args = process.argv.slice(2)
	const opts = parseArgs(args)
	if (opts.list) {
		for (const s of SCENARIOS) console.log(s.id)
		return 0
	}
	const missing = ['wrk', 'curl', 'redis-server'].filter((c) => !which(c))
	if (missing.length)
		throw new Error(`missing ${missing.join(', ')}: apt-get install -y ${missing.map((c) => c).join(' ')}`)
	if (!existsSync(join(opts.serviceDir, 'src', 'index.ts'))) throw new Error(`no src/index.ts in ${opts.serviceDir}`)
	installCleanup()

	const scenarios = SCENARIOS.filter((s) => opts.only.length === 0 || opts.only.includes(s.id))
	const env = machine()
	log(env)
	await prepareData(new Set<FileKind>(scenarios.flatMap((s) => s.needs?.(opts) ?? [])))

	const redis = await startRedis()
	const ctx = new BenchContext(opts, redis, new Date())
	const failed: string[] = []
	try {
		for (const scenario of scenarios) {
			log(`── ${scenario.id}`)
			const first = ctx.sections.length
			const loadBefore = loadAverage()
			try {
				await scenario.run(ctx)
				for (const section of ctx.sections.slice(first))
					section.notes.push(`Load average (1 min): ${loadBefore} before, ${loadAverage()} after.`)
			} catch (err) {
				failed.push(scenario.id)
				const message = err instanceof Error ? err.message : String(err)
				log(`${scenario.id} failed: ${message}`)
				ctx.notices.add(`scenario \`${scenario.id}\` failed: ${message.split('\n')[0]}`)
			} finally {
				await ctx.stopOwned()
			}
		}
	} finally {
		await redis.stop()
		await stopAll()
	}

	const parts = [header(ctx, env, args), ...ctx.sections.map(sectionMarkdown)]
	if (opts.profile) {
		const files = (await readdir(PROFILES)).filter((f) => f.startsWith(ctx.runName) && f.endsWith('.cpuprofile'))
		for (const f of files) {
			const summary = profileMarkdown(join(PROFILES, f), 25)
			writeFileSync(join(PROFILES, f.replace(/\.cpuprofile$/, '.md')), summary)
			parts.push(`## Profile ${f}\n\n${summary}`)
		}
	}
	const file =
		opts.out ??
		(opts.profile
			? join(PROFILES, `${ctx.runName}-${opts.profileScenario}.md`)
			: join(BENCH_DIR, 'results', `${ctx.runName}${opts.only.length ? '-partial' : ''}.md`))
	mkdirSync(join(file, '..'), { recursive: true })
	const report = parts.join('\n')
	writeFileSync(file, report)
	console.log(`\n${report}\nwritten to ${relative(process.cwd(), file)}`)
	return failed.length ? 1 : 0
}

try {
	process.exitCode = await main()
} catch (err) {
	console.error(`bench: ${err instanceof Error ? err.message : String(err)}`)
	await stopAll()
	process.exitCode = 1
}
