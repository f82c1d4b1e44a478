// 64 KiB downloads with 10⁴ and with 10⁶ live token records in Redis: the
// cost of a download must not depend on how many tokens are live. One
// redis-server and one download-gate per population, interleaved.

import { log } from '../lib/context'
import { FILES } from '../lib/data'
import { measureWrkArms, type WrkArm } from '../lib/measure'
import { preloadTokens, startRedis } from '../lib/redis'
import { fmt } from '../lib/report'
import type { Scenario } from '../lib/scenario'
import { startDownloadGate } from '../targets/download-gate'

const POPULATIONS = [10_000, 1_000_000]

export const liveTokens: Scenario = {
	id: 'live-tokens',
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: '64 KiB download with 10⁴ and 10⁶ live tokens in Redis',
			metric: 'req/s',
			cpuUnit: 'µs/req',
			refs: ['10⁴ tokens'],
			about:
				'Each population in its own redis-server, preloaded with token records in the store’s format over 10,000 users, each with its own download-gate (WORKERS=1); wrk -c64 with an unlimited token, interleaved.',
		})
		const arms: WrkArm[] = []
		for (const live of POPULATIONS) {
			const redis = await ctx.own(startRedis())
			log(`preloading ${fmt(live)} live tokens`)
			const keys = await preloadTokens(redis.url, 0, live)
			const gate = await ctx.own(startDownloadGate(ctx, { workers: 1, redis }))
			arms.push({
				target: gate,
				variant: `${fmt(live)} live tokens (${fmt(keys)} keys)`,
				request: await gate.download('u0', FILES.small.name),
				ref: live === POPULATIONS[0] ? '10⁴ tokens' : undefined,
				group: '*',
			})
		}
		const rows = await measureWrkArms(ctx, arms)
		const first = rows[0]
		for (const row of rows) {
			if (row !== first && first?.value && row.value !== undefined) {
				const r = row.value / first.value
				row.check = { target: 'req/s within 10 % of 10⁴', pass: Math.abs(r - 1) <= 0.1 }
			}
			ctx.record(section, row)
		}
	},
}
