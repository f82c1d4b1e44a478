// 1 GiB × 4 parallel curl downloads, one process each: how close to the
// plain Bun.file server and to nginx's sendfile download-gate gets, with an
// unlimited token (zero-copy file body) and a budgeted one (counted stream).

import { parallelDownloads } from '../lib/curl'
import { FILES } from '../lib/data'
import type { HttpRequest } from '../lib/http'
import { interleave } from '../lib/measure'
import { watchUsage } from '../lib/proc-stats'
import { median, type Row, rowOf } from '../lib/report'
import type { Scenario } from '../lib/scenario'
import { startPeers } from '../targets'
import type { RunningTarget } from '../targets/types'

const PARALLEL = 4

interface Arm {
	target: RunningTarget
	request: HttpRequest
	variant?: string
	ref?: string
	runs: { mbps: number; cpuS: number; redisS: number; downloads: number; peakRss: number; failures: number }[]
}

export const throughput1g: Scenario = {
	id: 'throughput-1g',
	needs: () => ['big'],
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: `1 GiB × ${PARALLEL} parallel curl`,
			metric: 'MB/s',
			cpuUnit: 'ms/download',
			about: `${PARALLEL} simultaneous \`curl -o /dev/null\` of one 1 GiB file (page cache warm), one process per server. MB/s over all of them; CPU per 1 GiB download.`,
		})
		const peers = await startPeers(ctx, 1)
		const file = FILES.big.name
		const arms: Arm[] = [
			{ target: peers.baseline, request: await peers.baseline.download('u0', file), ref: 'baseline', runs: [] },
		]
		if (peers.nginx)
			arms.push({ target: peers.nginx, request: await peers.nginx.download('u0', file), ref: 'nginx', runs: [] })
		if (peers.fastify) arms.push({ target: peers.fastify, request: await peers.fastify.download('u0', file), runs: [] })
		arms.push(
			{ target: peers.gate, variant: 'unlimited token', request: await peers.gate.download('u0', file), runs: [] },
			{
				target: peers.gate,
				variant: 'max_uses token',
				request: await peers.gate.download('u0', file, { maxUses: 1000 }),
				runs: [],
			},
		)
		await parallelDownloads(arms[0]?.request ?? { url: '' }, 1) // warm the page cache
		await interleave(ctx.opts.rounds, arms, async (arm) => {
			const { result, usage } = await watchUsage(
				arm.target.pids,
				arm.target.redisPid === null ? [] : [arm.target.redisPid],
				() => parallelDownloads(arm.request, PARALLEL),
			)
			arm.runs.push({
				mbps: result.mbps,
				cpuS: usage.cpuS,
				redisS: usage.sideCpuS,
				downloads: PARALLEL,
				peakRss: usage.peakRss,
				failures: result.failures,
			})
		})
		const rows: Row[] = arms.map((arm) => {
			const downloads = arm.runs.reduce((a, r) => a + r.downloads, 0)
			const failures = arm.runs.reduce((a, r) => a + r.failures, 0)
			return {
				...rowOf(arm),
				value: median(arm.runs.map((r) => r.mbps)),
				runs: arm.runs.map((r) => r.mbps),
				cpuPerReqS: arm.runs.reduce((a, r) => a + r.cpuS, 0) / downloads,
				redisCpuPerReqS:
					arm.target.redisPid === null ? undefined : arm.runs.reduce((a, r) => a + r.redisS, 0) / downloads,
				peakRssBytes: Math.max(...arm.runs.map((r) => r.peakRss)),
				note: failures ? `${failures} downloads failed` : undefined,
			}
		})
		const base = rows.find((r) => r.ref === 'baseline')?.value ?? 0
		for (const row of rows) {
			if (row.target === 'download-gate' && row.value !== undefined) {
				const min = row.variant === 'unlimited token' ? 0.9 : 0.5
				row.check = { target: `≥ ${min}× baseline`, pass: row.value >= min * base }
			}
			ctx.record(section, row)
		}
	},
}
