// The line-up most scenarios compare: the plain Bun.file baseline, nginx
// secure_link (when installed), the Fastify fixture and download-gate, all
// with the same number of processes.

import type { BenchContext } from '../lib/context'
import { startBunFile } from './bun-file'
import { type DownloadGate, startDownloadGate } from './download-gate'
import { startFastify } from './fastify'
import { startNginx } from './nginx'
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
