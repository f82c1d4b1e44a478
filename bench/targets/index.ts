// The line-up most scenarios compare: the plain Bun.file baseline, nginx
// secure_link (when installed), the Fastify fixture and download-gate, all
// with the same number of processes; and for a bucket, download-gate on
// s3rver against s3rver's own presigned GETs.

import type { BenchContext } from '../lib/context'
import type { FileKind } from '../lib/data'
import { startBunFile } from './bun-file'
import { type DownloadGate, startDownloadGate } from './download-gate'
import { startFastify } from './fastify'
import { startNginx } from './nginx'
import { type S3rver, startS3rver } from './s3rver'
import type { FileServer, TokenServer } from './types'

/** One of each peer, started and owned by the current scenario. */
export interface Peers {
	baseline: FileServer
	nginx: FileServer | null
	fastify: TokenServer | null
	gate: DownloadGate
}

/** Starts every peer with `processes` processes (download-gate as WORKERS=processes). */
export async function startPeers(
	ctx: BenchContext,
	processes: number,
	opts: { fastify?: boolean; nginx?: boolean } = {},
): Promise<Peers> {
	const baseline = await ctx.own(startBunFile({ processes }))
	const nginx = opts.nginx === false ? null : await startNginx(ctx, { workers: processes })
	if (nginx) await ctx.own(Promise.resolve(nginx))
	const fastify = opts.fastify === false ? null : await ctx.own(startFastify(ctx, { processes }))
	const gate = await ctx.own(startDownloadGate(ctx, { workers: processes }))
	return { baseline, nginx, fastify, gate }
}

/** download-gate reading a bucket, and the bucket's own presigned GETs to compare it with. */
export interface BucketPeers {
	s3: S3rver
	/** s3rver serving presigned GETs itself: the limit of proxying. */
	direct: FileServer
	/** download-gate with `S3_BUCKET` on that s3rver, whose CPU is reported as `s3rver`. */
	gate: DownloadGate
}

/** Starts s3rver (with `files` uploaded) and download-gate (`WORKERS=workers`) on it, owned by the current scenario. */
export async function startBucketPeers(
	ctx: BenchContext,
	opts: { workers: number; files?: readonly FileKind[] },
): Promise<BucketPeers> {
	const s3 = await ctx.own(startS3rver({ files: opts.files }))
	const gate = await ctx.own(
		startDownloadGate(ctx, { workers: opts.workers, storage: s3.serviceEnv, backends: { s3rver: s3.pid } }),
	)
	return { s3, direct: s3.direct, gate }
}
