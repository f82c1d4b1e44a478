// The cost of per-user download slots: the 64 KiB download with
// MAX_CONCURRENT_DOWNLOADS_PER_USER off (the default) and at 1000, where
// every body takes a slot in Redis and becomes a counted stream (no
// zero-copy), interleaved.

import { FILES } from '../lib/data'
import { expectOk } from '../lib/http'
import { measureWrkArms, type WrkArm } from '../lib/measure'
import type { Scenario } from '../lib/scenario'
import { startDownloadGate } from '../targets/download-gate'

const OFF = 'slots off'
const LIMIT = 1000

export const slotsCost: Scenario = {
	id: 'slots-cost',
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: `Download slots off vs MAX_CONCURRENT_DOWNLOADS_PER_USER=${LIMIT}: 64 KiB download, c=64, 1 process`,
			metric: 'req/s',
			cpuUnit: 'µs/req',
			refs: [OFF],
			ratios: ['value', 'cpu', 'total'],
			about: `Two download-gates (\`WORKERS=1\`) on the bench’s redis-server, interleaved, wrk -c64 on one 64 KiB file with an unlimited token of one user. **slots off**: \`MAX_CONCURRENT_DOWNLOADS_PER_USER=0\` (the default), a zero-copy file body. **${LIMIT} slots**: every body takes a slot (a Lua script on the user’s \`dl:\` set), is sent as a counted stream and gives the slot back when it ends; ${LIMIT} is far above the 64 connections, so no request is refused. \`CPU+Redis\` counts redis-server’s CPU too.`,
		})
		const off = await ctx.own(startDownloadGate(ctx, { workers: 1, env: { MAX_CONCURRENT_DOWNLOADS_PER_USER: '0' } }))
		const on = await ctx.own(
			startDownloadGate(ctx, { workers: 1, env: { MAX_CONCURRENT_DOWNLOADS_PER_USER: String(LIMIT) } }),
		)
		const file = FILES.small.name
		const arms: WrkArm[] = [
			{ target: off, variant: OFF, ref: OFF, request: await off.download('u0', file) },
			{ target: on, variant: `${LIMIT} slots`, request: await on.download('u0', file) },
		]
		for (const arm of arms) await expectOk(`download-gate, ${arm.variant}`, arm.request)
		const rows = await measureWrkArms(ctx, arms)
		for (const row of rows) ctx.record(section, row)
	},
}
