import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { tracked } from './child-processes'
import { freePort } from './redis-server'

/** Where a bucket is and how to sign for it (what the storage under test is given). */
export interface BucketTarget {
	readonly endpoint: string
	readonly bucket: string
	readonly region: string
	readonly accessKeyId: string
	readonly secretAccessKey: string
	/** A client for the test's own writes (never the code under test). */
	readonly client: Bun.S3Client
	/** Writes (or replaces) an object. */
	put(key: string, data: Uint8Array | string | Blob): Promise<void>
	/** Deletes an object. */
	remove(key: string): Promise<void>
}

/** A real s3rver child process on a free loopback port, with one bucket, for tests. */
export interface S3Server extends BucketTarget {
	readonly port: number
	/** Stops the server (SIGTERM) and waits for it to exit; its data stays for `start`. */
	stop(): Promise<void>
	/** Starts it again on the same port and data directory. */
	start(): Promise<void>
	/** Freezes the process (SIGSTOP): connections are accepted by the kernel, nothing answers. */
	pause(): void
	/** Thaws a paused process (SIGCONT). */
	resume(): void
	/** Kills the process (SIGKILL) and waits for it to exit. */
	kill(): Promise<void>
	/** Stops the server and deletes its data directory. */
	destroy(): Promise<void>
	/** The process id while running, else null. */
	readonly pid: number | null
}

/** The credentials s3rver's built-in account accepts. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const

const S3RVER_BIN = join(import.meta.dir, '../../node_modules/s3rver/bin/s3rver.js')

function targetOf(endpoint: string, bucket: string, region: string, accessKeyId: string, secretAccessKey: string) {
	const client = new Bun.S3Client({ endpoint, bucket, region, accessKeyId, secretAccessKey })
	return {
		endpoint,
		bucket,
		region,
		accessKeyId,
		secretAccessKey,
		client,
		async put(key: string, data: Uint8Array | string | Blob) {
			await client.write(key, data)
		},
		async remove(key: string) {
			await client.delete(key)
		},
	}
}

async function answersHttp(url: string): Promise<boolean> {
	try {
		const response = await fetch(url, { signal: AbortSignal.timeout(1000) })
		await response.body?.cancel()
		return true
	} catch {
		return false
	}
}

/**
 * Starts s3rver (under Bun) with a temporary data directory and `bucket`
 * created, and waits until it answers. `serviceEndpoint` is the host whose
 * `<bucket>.s3.` subdomains are virtual-hosted buckets.
 */
export async function startS3Server(
	options: { bucket?: string; port?: number; serviceEndpoint?: string } = {},
): Promise<S3Server> {
	const bucket = options.bucket ?? 'test-bucket'
	const port = options.port ?? freePort()
	const dataDir = await mkdtemp(join(tmpdir(), 'dlg-s3rver-'))
	const endpoint = `http://127.0.0.1:${port}`
	let child: Subprocess | null = null
	const start = async () => {
		const argv = ['--directory', dataDir, '--port', String(port), '--address', '127.0.0.1']
		// With a service endpoint, `<bucket>.s3.<endpoint>` hosts name the bucket (virtual-hosted style).
		if (options.serviceEndpoint) argv.push('--service-endpoint', options.serviceEndpoint)
		child = tracked(
			Bun.spawn([process.execPath, S3RVER_BIN, ...argv, '--silent', '--configure-bucket', bucket], {
				stdout: 'ignore',
				stderr: 'inherit',
			}),
		)
		for (let i = 0; i < 400; i++) {
			if (await answersHttp(endpoint)) return
			if (child.exitCode !== null) throw new Error(`s3rver exited with ${child.exitCode} (port ${port})`)
			await Bun.sleep(25)
		}
		throw new Error(`s3rver did not answer on port ${port}`)
	}
	const stop = async () => {
		const running = child
		child = null
		if (!running) return
		// A paused server never handles SIGTERM: thaw it first.
		running.kill('SIGCONT')
		running.kill('SIGTERM')
		await running.exited
	}
	try {
		await start()
	} catch (err) {
		await stop()
		await rm(dataDir, { recursive: true, force: true })
		throw err
	}
	return {
		...targetOf(endpoint, bucket, 'us-east-1', S3RVER_CREDENTIALS.accessKeyId, S3RVER_CREDENTIALS.secretAccessKey),
		port,
		stop,
		start,
		pause() {
			child?.kill('SIGSTOP')
		},
		resume() {
			child?.kill('SIGCONT')
		},
		async kill() {
			const running = child
			child = null
			if (!running) return
			running.kill('SIGKILL')
			await running.exited
		},
		async destroy() {
			await stop()
			await rm(dataDir, { recursive: true, force: true })
		},
		get pid() {
			return child?.pid ?? null
		},
	}
}

/**
 * The bucket the storage contract runs against: the one `S3_TEST_ENDPOINT`,
 * `S3_TEST_BUCKET`, `S3_TEST_ACCESS_KEY_ID`, `S3_TEST_SECRET_ACCESS_KEY` (and
 * `S3_TEST_REGION`) name when set (a user's own MinIO), else a started s3rver.
 * `release` stops what was started.
 */
export async function contractBucket(): Promise<{ target: BucketTarget; release(): Promise<void> }> {
	const env = process.env
	if (env.S3_TEST_ENDPOINT) {
		const missing = ['S3_TEST_BUCKET', 'S3_TEST_ACCESS_KEY_ID', 'S3_TEST_SECRET_ACCESS_KEY'].filter((n) => !env[n])
		if (missing.length > 0) throw new Error(`S3_TEST_ENDPOINT is set; set ${missing.join(', ')} too`)
		const target = targetOf(
			env.S3_TEST_ENDPOINT,
			env.S3_TEST_BUCKET ?? '',
			env.S3_TEST_REGION ?? 'us-east-1',
			env.S3_TEST_ACCESS_KEY_ID ?? '',
			env.S3_TEST_SECRET_ACCESS_KEY ?? '',
		)
		return { target, release: async () => {} }
	}
	const server = await startS3Server()
	return { target: server, release: () => server.destroy() }
}
