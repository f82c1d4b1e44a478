// 100 slow clients (curl --limit-rate 1M) on a 1 GiB file, 2 processes per
// server: the peak RSS, PSS and anonymous memory of each server's whole process tree, for
// download-gate's unlimited (file body) and budgeted (counted stream) tokens,
// with the baseline, nginx and the Fastify fixture for reference. A full run
// repeats download-gate on the 4 GiB file.

import { MiB } from '../lib/context'
import type { FileKind } from '../lib/data'
import { FILES } from '../lib/data'
import { type DownloadArm, measureSlowClientArms } from '../lib/measure'
import type { Scenario } from '../lib/scenario'
import { startPeers } from '../targets'

const CLIENTS = 100
const PROCESSES = 2

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
			ratios: ['rss', 'pss'],
			about: `${CLIENTS} concurrent \`curl --limit-rate 1M --max-time ${seconds}\` on one file; peak RSS, PSS and anonymous memory are each the peak of a sum over the server's whole process tree (download-gate: parent + worker, \`WORKERS=${PROCESSES}\`; nginx: master + ${PROCESSES} workers; Fastify: cluster primary + ${PROCESSES} workers; baseline: ${PROCESSES} processes sharing the port), sampled every 50 ms. MB/s is what all clients received together (curl lets a burst through before its rate limit bites).`,
		})
		const peers = await startPeers(ctx, PROCESSES)
		const files: FileKind[] = ctx.opts.quick ? ['big'] : ['big', 'huge']
		const big = FILES.big.name
		const arms: DownloadArm[] = [
			{ target: peers.baseline, request: await peers.baseline.download('u0', big), variant: '1 GiB', ref: 'baseline' },
		]
		if (peers.nginx)
			arms.push({ target: peers.nginx, request: await peers.nginx.download('u0', big), variant: '1 GiB', ref: 'nginx' })
		if (peers.fastify)
			arms.push({ target: peers.fastify, request: await peers.fastify.download('u0', big), variant: '1 GiB' })
		for (const kind of files) {
			const f = FILES[kind]
			const size = kind === 'big' ? '1 GiB' : '4 GiB'
			arms.push(
				{ target: peers.gate, request: await peers.gate.download('u0', f.name), variant: `${size}, unlimited token` },
				{
					target: peers.gate,
					request: await peers.gate.download('u0', f.name, { maxUses: 1000 }),
					variant: `${size}, max_uses token`,
				},
			)
		}
		const rows = await measureSlowClientArms(ctx, arms, { clients: CLIENTS, rate: '1M', seconds })
		for (const row of rows) {
			if (row.target === 'download-gate')
				row.check = { target: '≤ 100 MiB, both processes together', pass: (row.peakRssBytes ?? 0) <= 100 * MiB }
			ctx.record(section, row)
		}
	},
}
