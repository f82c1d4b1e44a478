// 100 slow clients (curl --limit-rate 1M) on a 1 GiB file, 2 processes per
// server: the peak RSS of each server's whole process tree, for
// download-gate's unlimited (file body) and budgeted (counted stream) tokens,
// with the baseline, nginx and the Fastify fixture for reference. A full run
// repeats download-gate on the 4 GiB file.

import { MiB } from '../lib/context'
import { slowClients } from '../lib/curl'
import type { FileKind } from '../lib/data'
import { FILES } from '../lib/data'
import type { HttpRequest } from '../lib/http'
import { interleave } from '../lib/measure'
import { watchUsage } from '../lib/proc-stats'
import { fmt, median, rowOf } from '../lib/report'
import type { Scenario } from '../lib/scenario'
import { startPeers } from '../targets'
import type { RunningTarget } from '../targets/types'

const CLIENTS = 100
const PROCESSES = 2

interface Arm {
	target: RunningTarget
	request: HttpRequest
	variant: string
	ref?: string
	runs: { mbps: number; peakRss: number; idleRss: number; failures: number }[]
}

export const slowClientsScenario: Scenario = {
	id: 'slow-clients',
	needs: (opts) => (opts.quick ? ['big'] : ['big', 'huge']),
	async run(ctx) {
		const seconds = ctx.opts.quick ? 4 : 10
		const section = ctx.section({
			id: this.id,
			title: `${CLIENTS} slow clients on a large file, ${PROCESSES} processes each`,
			metric: 'MB/s',
			cpuUnit: 'µs/req',
			ratios: ['rss'],
			about: `${CLIENTS} concurrent \`curl --limit-rate 1M --max-time ${seconds}\` on one file; peak RSS is the sum over the server's whole process tree (download-gate: parent + worker, \`WORKERS=${PROCESSES}\`; nginx: master + ${PROCESSES} workers; Fastify: cluster primary + ${PROCESSES} workers; baseline: ${PROCESSES} processes), sampled every 50 ms. MB/s is what all clients received together (curl lets a burst through before its rate limit bites).`,
		})
		const peers = await startPeers(ctx, PROCESSES)
		const files: FileKind[] = ctx.opts.quick ? ['big'] : ['big', 'huge']
		const arms: Arm[] = []
		const big = FILES.big.name
		arms.push({
			target: peers.baseline,
			request: await peers.baseline.download('u0', big),
			variant: '1 GiB',
			ref: 'baseline',
			runs: [],
		})
		if (peers.nginx)
			arms.push({
				target: peers.nginx,
				request: await peers.nginx.download('u0', big),
				variant: '1 GiB',
				ref: 'nginx',
				runs: [],
			})
		if (peers.fastify)
			arms.push({ target: peers.fastify, request: await peers.fastify.download('u0', big), variant: '1 GiB', runs: [] })
		for (const kind of files) {
			const f = FILES[kind]
			const size = kind === 'big' ? '1 GiB' : '4 GiB'
			arms.push(
				{
					target: peers.gate,
					request: await peers.gate.download('u0', f.name),
					variant: `${size}, unlimited token`,
					runs: [],
				},
				{
					target: peers.gate,
					request: await peers.gate.download('u0', f.name, { maxUses: 1000 }),
					variant: `${size}, max_uses token`,
					runs: [],
				},
			)
		}
		await interleave(ctx.opts.rounds, arms, async (arm) => {
			const { result, usage } = await watchUsage(
				arm.target.pids,
				[],
				() => slowClients(arm.request, { clients: CLIENTS, rate: '1M', seconds }),
				50,
			)
			arm.runs.push({
				mbps: result.bytes / 1e6 / seconds,
				peakRss: usage.peakRss,
				idleRss: usage.idleRss,
				failures: result.failures,
			})
			// Let the server settle (buffers freed, GC) before the next one is sampled idle.
			await Bun.sleep(500)
		})
		for (const arm of arms) {
			const peak = Math.max(...arm.runs.map((r) => r.peakRss))
			const idle = median(arm.runs.map((r) => r.idleRss))
			const failures = arm.runs.reduce((a, r) => a + r.failures, 0)
			ctx.record(section, {
				...rowOf(arm),
				value: median(arm.runs.map((r) => r.mbps)),
				peakRssBytes: peak,
				idleRssBytes: idle,
				check:
					arm.target.name === 'download-gate'
						? { target: '≤ 100 MiB, both processes together', pass: peak <= 100 * MiB }
						: undefined,
				note: [
					`idle ${fmt(idle / MiB, 1)} MiB, +${fmt((peak - idle) / MiB, 1)} MiB under load`,
					failures ? `${failures} clients failed` : '',
				]
					.filter(Boolean)
					.join('; '),
			})
		}
	},
}
