// A bucket on loopback: s3rver (the npm devDependency, an S3-protocol server
// over a directory) as a child process, with the bench's files uploaded as
// objects `<user>/<file>` of the bucket `bench`, and the peer that reads them
// without a gate in between: a plain GET of a presigned URL, the limit of
// what proxying through download-gate can reach.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DATA, log, ROOT, STORAGE, type Stoppable } from '../lib/context'
import { FILES, type FileKind } from '../lib/data'
import { baseEnv, freePort, spawnServer, waitFor } from '../lib/proc'
import { fmt } from '../lib/report'
import { bunVersion } from '../lib/versions'
import type { FileServer } from './types'

const BIN = join(ROOT, 'node_modules', 's3rver', 'bin', 's3rver.js')
const BUCKET = 'bench'
const REGION = 'us-east-1'
// s3rver's built-in account.
const KEY = 'S3RVER'
// Kept between runs (gitignored with the rest of .data/): uploading 1 GiB again each time would be slow.
const DIRECTORY = join(DATA, 's3rver')
// A day: presigned URLs of the direct peer outlive any run (s3rver refuses more than a week).
const PRESIGNED_FOR_S = 86_400

/** A running s3rver holding the bench's files. */
export interface S3rver extends Stoppable {
	readonly endpoint: string
	readonly pid: number
	/** `s3rver 3.7.1 on Bun 1.x`. */
	readonly runtime: string
	/** download-gate's environment for this bucket (instead of `STORAGE_DIR`). */
	readonly serviceEnv: Record<string, string>
	/** The same objects as plain GETs of presigned URLs, served by s3rver itself. */
	readonly direct: FileServer
}

function s3rverVersion(): string {
	const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules', 's3rver', 'package.json'), 'utf8')) as {
		version?: string
	}
	return `s3rver ${pkg.version ?? '?'}`
}

/** Uploads `u0/<file>` for each kind unless an object of the right size is there already. */
async function upload(client: Bun.S3Client, kinds: readonly FileKind[]): Promise<void> {
	for (const kind of new Set<FileKind>(['small', ...kinds])) {
		const { name, bytes } = FILES[kind]
		const key = `u0/${name}`
		if ((await client.size(key).catch(() => -1)) === bytes) continue
		log(`uploading ${key} to s3rver (${fmt(bytes / 2 ** 20, bytes < 2 ** 20 ? 2 : 0)} MiB)`)
		await client.write(key, Bun.file(join(STORAGE, 'u0', name)))
	}
}

/**
 * Starts s3rver on a free loopback port (`--silent`: no log line per
 * request) with the bucket `bench` holding `u0/<file>` for the small file and
 * `files`, which must have been prepared on disk (the scenario's `needs`).
 */
export async function startS3rver(opts: { files?: readonly FileKind[] } = {}): Promise<S3rver> {
	const port = freePort()
	const endpoint = `http://127.0.0.1:${port}`
	const managed = spawnServer(
		[
			'bun',
			BIN,
			'--directory',
			DIRECTORY,
			'--port',
			String(port),
			'--address',
			'127.0.0.1',
			'--silent',
			'--configure-bucket',
			BUCKET,
		],
		{ env: baseEnv() },
	)
	const stop = () => managed.stop()
	const client = new Bun.S3Client({ endpoint, bucket: BUCKET, region: REGION, accessKeyId: KEY, secretAccessKey: KEY })
	try {
		// Any HTTP answer will do: the root of the service wants a signature.
		await waitFor('s3rver', async () => (await fetch(endpoint)).status > 0, { managed })
		await upload(client, opts.files ?? [])
	} catch (err) {
		await stop()
		throw err
	}
	const runtime = `${s3rverVersion()} on ${bunVersion()}`
	return {
		endpoint,
		pid: managed.pid,
		runtime,
		stop,
		serviceEnv: {
			S3_BUCKET: BUCKET,
			S3_ENDPOINT: endpoint,
			S3_REGION: REGION,
			S3_ACCESS_KEY_ID: KEY,
			S3_SECRET_ACCESS_KEY: KEY,
		},
		direct: {
			name: 's3rver direct',
			runtime,
			processes: 1,
			url: endpoint,
			pids: [managed.pid],
			redisPid: null,
			stop,
			download: async (user, file) => ({
				url: client.presign(`${user}/${file}`, { method: 'GET', expiresIn: PRESIGNED_FOR_S }),
			}),
		},
	}
}
