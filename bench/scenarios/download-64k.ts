// 64 KiB downloads with an unlimited token, c=64: download-gate against the
// plain Bun.file server, nginx secure_link and the Fastify fixture, with 1 and
// with 2 processes each, all interleaved.

import { FILES } from '../lib/data'
import { measureWrkArms, type WrkArm } from '../lib/measure'
import type { Row } from '../lib/report'
import type { Scenario } from '../lib/scenario'
import { startPeers } from '../targets'

export const download64k: Scenario = {
	id: 'download-64k',
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: '64 KiB download, unlimited token, c=64',
			metric: 'req/s',
			cpuUnit: 'µs/req',
			about:
				'wrk -c64 on one 64 KiB file. The baseline serves it with no check at all; nginx checks a secure_link MD5; the Fastify fixture and download-gate verify an HS256 JWT and look its jti up in Redis. Ratios are against the peer with the same number of processes.',
		})
		const arms: WrkArm[] = []
		for (const processes of [1, 2]) {
			const peers = await startPeers(ctx, processes)
			const file = FILES.small.name
			arms.push({ target: peers.baseline, request: await peers.baseline.download('u0', file), ref: 'baseline' })
			if (peers.nginx) arms.push({ target: peers.nginx, request: await peers.nginx.download('u0', file), ref: 'nginx' })
			if (peers.fastify) arms.push({ target: peers.fastify, request: await peers.fastify.download('u0', file) })
			arms.push({ target: peers.gate, request: await peers.gate.download('u0', file) })
		}
		const rows = await measureWrkArms(ctx, arms)
		const refRow = (ref: string, p: number) => rows.find((r) => r.ref === ref && r.processes === p)
		const base = (p: number) => refRow('baseline', p)?.value ?? 0
		for (const row of rows) {
			if (row.target === 'download-gate') row.check = issue13Check(row, refRow('baseline', 1), refRow('nginx', 2))
			ctx.record(section, row)
		}
		const gate = (p: number) => rows.find((r) => r.target === 'download-gate' && r.processes === p)
		const one = gate(1)
		const two = gate(2)
		if (one?.value && two?.value)
			section.notes.push(
				`download-gate WORKERS=2 ÷ WORKERS=1: ${(two.value / one.value).toFixed(2)}× req/s (target ≥ 1.5×: ${two.value / one.value >= 1.5 ? 'pass' : '**fail**'}); the baseline's own 2 ÷ 1: ${(base(2) / base(1)).toFixed(2)}×. On 2 cores shared with wrk and Redis, the CPU column is the figure to compare.`,
			)
	},
}

/**
 * The targets users compare against: at one process ≥ 0.9× the baseline's
 * req/s, ≤ 1.2× its CPU per request and ≤ 1.5× its p99; with two, ≥ 0.5× nginx.
 */
function issue13Check(row: Row, baseline: Row | undefined, nginx: Row | undefined): Row['check'] {
	const parts: [string, boolean][] = []
	if (row.processes === 2) {
		parts.push(['≥ 0.5× nginx req/s', (row.value ?? 0) >= 0.5 * (nginx?.value ?? Number.POSITIVE_INFINITY)])
	} else {
		parts.push(['≥ 0.9× baseline req/s', (row.value ?? 0) >= 0.9 * (baseline?.value ?? Number.POSITIVE_INFINITY)])
		parts.push([
			'CPU ≤ 1.2× baseline',
			(row.cpuPerReqS ?? Number.POSITIVE_INFINITY) <= 1.2 * (baseline?.cpuPerReqS ?? 0),
		])
		parts.push(['p99 ≤ 1.5× baseline', (row.p99Ms ?? Number.POSITIVE_INFINITY) <= 1.5 * (baseline?.p99Ms ?? 0)])
	}
	const failed = parts.filter(([, pass]) => !pass).map(([what]) => what)
	return {
		target: parts.map(([what]) => what).join(', ') + (failed.length ? `; missed: ${failed.join(', ')}` : ''),
		pass: failed.length === 0,
	}
}
