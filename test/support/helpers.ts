import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp } from '../../src/app'
import type { Clock } from '../../src/clock'
import { type Config, type Env, loadConfig } from '../../src/config'
import { createDeps, type Deps, type DepsOverrides } from '../../src/deps'
import { createLogger, type Logger } from '../../src/log'
import type { BucketTarget } from './s3-server'

/** The repository's root (where package.json is): the working directory of the service as deployed. */
export const REPO_ROOT = join(import.meta.dir, '..', '..')

export type StoreKind = 'redis' | 'memory'

/** A clock tests move by hand. */
export interface FakeClock {
	readonly now: Clock
	advance(ms: number): void
}

export function fakeClock(start = Date.now()): FakeClock {
	let t = start
	return {
		now: () => t,
		advance(ms) {
			t += ms
		},
	}
}

/** Log lines kept in memory, to assert what is (and is not) logged. */
export function captureLogger(): { log: Logger; lines: string[] } {
	const lines: string[] = []
	return { log: createLogger('debug', (line) => lines.push(line)), lines }
}

export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789'
export const API_KEY = 'test-api-key-0123456789abcdef'

export interface TestApp {
	readonly app: ReturnType<typeof createApp>
	readonly deps: Deps
	readonly config: Config
	readonly clock: FakeClock
	/** The temporary STORAGE_DIR; '' when files live in a bucket (`makeTestApp({ bucket })`). */
	readonly storageDir: string
	readonly logLines: string[]
	/** Base URL of the real listening server (every test goes through Bun's HTTP layer). */
	readonly baseUrl: string
	/** Sends a request to the listening server. */
	request(path: string, init?: RequestInit): Promise<Response>
	/** Writes a file into storage (the directory, or the bucket's object of it) and returns its bytes. */
	putFile(userId: string, filename: string, content: Uint8Array<ArrayBuffer> | string): Promise<Uint8Array<ArrayBuffer>>
	/** Issues a token through the API (ISSUE_AUTH none or the test key). */
	issue(userId: string, filename: string, query?: string): Promise<IssueBody>
	close(): Promise<void>
}

export interface IssueBody {
	token: string
	expires_in: number
	download_url: string
	jti: string
	expires_at: string
	max_uses: number | null
}

/** A unique key prefix, so tests sharing one redis-server never see each other's keys. */
export function uniquePrefix(): string {
	return `t${crypto.randomUUID().slice(0, 8)}:`
}

/**
 * Environment for `bun src/index.ts` on the shared test redis-server: its own
 * key prefix, `storage` as STORAGE_DIR, quiet logs; `extra` wins.
 */
export function serviceEnv(storage: string, extra: Record<string, string> = {}): Record<string, string> {
	return {
		JWT_SECRET: TEST_SECRET,
		REDIS_URL: process.env.TEST_REDIS_URL ?? '',
		REDIS_KEY_PREFIX: uniquePrefix(),
		STORAGE_DIR: storage,
		LOG_LEVEL: 'silent',
		...extra,
	}
}

/**
 * Builds the real app on a temporary storage dir with the chosen store (a
 * real redis-server for 'redis'), a fake clock and a captured log.
 */
/**
 * No request anywhere in the suite may get a 5xx other than 503
 * `store_unavailable`: every other one is logged as `internal_error`, and an
 * app that logged one fails the test that closes it (tests that provoke one
 * on purpose say so with `allowInternalErrors`).
 */
export function assertNoInternalErrors(logLines: readonly string[], allowed = false): void {
	if (allowed) return
	const internal = logLines.filter((line) => line.includes('"code":"internal_error"'))
	if (internal.length > 0)
		throw new Error(`${internal.length} request(s) answered 500 internal_error:\n${internal.slice(0, 3).join('\n')}`)
}

export async function makeTestApp(
	options: {
		store?: StoreKind
		env?: Env
		clock?: FakeClock
		allowInternalErrors?: boolean
		/** Where the server listens (default 127.0.0.1; `::` for a dual-stack socket). */
		hostname?: string
		/** Shorter webhook backoffs and takeover times, for tests that deliver webhooks. */
		webhookTuning?: DepsOverrides['webhookTuning']
		/** The webhook consumer name's worker index (default 0): instances on one host sharing a stream need distinct ones. */
		workerIndex?: number
		/**
		 * Files live in this bucket (S3_BUCKET, S3_ENDPOINT, S3_REGION and the
		 * credentials set from it; `env` may add S3_PREFIX, S3_REDIRECT, …)
		 * instead of a temporary STORAGE_DIR.
		 */
		bucket?: BucketTarget
	} = {},
): Promise<TestApp> {
	const bucket = options.bucket
	const storageDir = bucket ? '' : await mkdtemp(join(tmpdir(), 'dlg-storage-'))
	const store = options.store ?? 'redis'
	const redisUrl = process.env.TEST_REDIS_URL
	if (store === 'redis' && !redisUrl) throw new Error('TEST_REDIS_URL is not set: is test/setup.ts preloaded?')
	const config = loadConfig({
		JWT_SECRET: TEST_SECRET,
		...(bucket
			? {
					S3_BUCKET: bucket.bucket,
					S3_ENDPOINT: bucket.endpoint,
					S3_REGION: bucket.region,
					S3_ACCESS_KEY_ID: bucket.accessKeyId,
					S3_SECRET_ACCESS_KEY: bucket.secretAccessKey,
				}
			: { STORAGE_DIR: storageDir }),
		LOG_LEVEL: 'silent',
		REDIS_KEY_PREFIX: uniquePrefix(),
		...(store === 'redis' ? { REDIS_URL: redisUrl } : {}),
		...options.env,
	})
	const clock = options.clock ?? fakeClock()
	const { log, lines } = captureLogger()
	const deps = await createDeps(config, {
		clock: clock.now,
		log,
		...(options.webhookTuning ? { webhookTuning: options.webhookTuning } : {}),
		...(options.workerIndex !== undefined ? { workerIndex: options.workerIndex } : {}),
	})
	const app = createApp(deps).listen({ port: 0, hostname: options.hostname ?? '127.0.0.1' })
	deps.start()
	const port = app.server?.port
	if (!port) throw new Error('server did not start')
	const baseUrl = `http://127.0.0.1:${port}`

	const testApp: TestApp = {
		app,
		deps,
		config,
		clock,
		storageDir,
		logLines: lines,
		baseUrl,
		request: (path, init) => fetch(`${baseUrl}${path}`, init),
		async putFile(userId, filename, content) {
			const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content
			if (bucket && config.storage.kind === 'bucket') {
				await bucket.put(`${config.storage.prefix}${userId}/${filename}`, bytes)
				return bytes
			}
			await mkdir(join(storageDir, userId), { recursive: true })
			await writeFile(join(storageDir, userId, filename), bytes)
			return bytes
		},
		async issue(userId, filename, query = '') {
			const res = await testApp.request(
				`/api/get-download-token/${encodeURIComponent(userId)}/${encodeURIComponent(filename)}${query}`,
				{ headers: config.apiKeys.length > 0 ? { 'X-API-Key': config.apiKeys[0] ?? '' } : {} },
			)
			if (res.status !== 200) throw new Error(`issue failed: ${res.status} ${await res.text()}`)
			return (await res.json()) as IssueBody
		},
		async close() {
			await app.stop(true)
			await deps.close()
			if (storageDir !== '') await rm(storageDir, { recursive: true, force: true })
			assertNoInternalErrors(lines, options.allowInternalErrors === true)
		},
	}
	return testApp
}

/** Random bytes of a given length (crypto-quality is not needed, speed is). */
export function randomBytesOf(length: number): Uint8Array<ArrayBuffer> {
	const out = new Uint8Array(length)
	for (let i = 0; i < length; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65536)))
	return out
}

export function sha256(data: Uint8Array | ArrayBuffer): string {
	return new Bun.CryptoHasher('sha256').update(data).digest('hex')
}

export const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` })

export const downloadPath = (userId: string, filename: string) =>
	`/api/download/${encodeURIComponent(userId)}/${encodeURIComponent(filename)}`
