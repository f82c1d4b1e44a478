// Drives a target with wrk while its process tree is watched, interleaving
// targets round by round (A/B/C, A/B/C…) so drift on a shared machine does
// not favour whichever ran first.

import type { RunningTarget } from '../targets/types'
import type { BenchContext } from './context'
import type { HttpRequest } from './http'
import { type Usage, watchUsage } from './proc-stats'
import { median, type RefKind, type Row } from './report'
import { type WrkResult, wrk } from './wrk'

/** One wrk run and what the server tree spent on it. */
export interface WrkSample {
	wrk: WrkResult
	usage: Usage
}

/** One target under one request in a wrk scenario. */
export interface WrkArm {
	target: RunningTarget
	request: HttpRequest
	variant?: string
	ref?: RefKind
	group?: string
	/** `ok`: every answer must be 2xx; `refused`: every answer must be an error. */
	expect?: 'ok' | 'refused'
	connections?: number
	rotateUsers?: number
}

/** Runs `fn` for each arm, `rounds` times, in the order A/B/C, A/B/C… */
export async function interleave<A>(
	rounds: number,
	arms: readonly A[],
	fn: (arm: A, round: number) => Promise<void>,
): Promise<void> {
	for (let round = 0; round < rounds; round++) for (const arm of arms) await fn(arm, round)
}

/** One wrk run of `req` against `target`, watching its tree and its redis-server. */
export function wrkSample(
	ctx: BenchContext,
	target: RunningTarget,
	req: HttpRequest,
	opts: { connections: number; rotateUsers?: number; seconds?: number },
): Promise<WrkSample> {
	return watchUsage(target.pids, target.redisPid === null ? [] : [target.redisPid], () =>
		wrk(req, {
			connections: opts.connections,
			seconds: opts.seconds ?? ctx.opts.seconds,
			rotateUsers: opts.rotateUsers,
		}),
	).then(({ result, usage }) => ({ wrk: result, usage }))
}

/** A row from an arm's samples: medians of req/s and latency, CPU per request over all runs. */
export function wrkRow(arm: WrkArm, samples: readonly WrkSample[]): Row {
	const t = arm.target
	const requests = samples.reduce((a, s) => a + s.wrk.requests, 0)
	const cpuS = samples.reduce((a, s) => a + s.usage.cpuS, 0)
	const redisS = samples.reduce((a, s) => a + s.usage.sideCpuS, 0)
	const unexpected = samples.reduce(
		(a, s) => a + s.wrk.errors + (arm.expect === 'refused' ? s.wrk.requests - s.wrk.non2xx : s.wrk.non2xx),
		0,
	)
	return {
		target: t.name,
		variant: arm.variant,
		runtime: t.runtime,
		processes: t.processes,
		group: arm.group,
		ref: arm.ref,
		value: median(samples.map((s) => s.wrk.rps)),
		runs: samples.map((s) => s.wrk.rps),
		p50Ms: median(samples.map((s) => s.wrk.p50Ms)),
		p99Ms: median(samples.map((s) => s.wrk.p99Ms)),
		cpuPerReqS: requests ? cpuS / requests : undefined,
		redisCpuPerReqS: t.redisPid !== null && requests ? redisS / requests : undefined,
		peakRssBytes: Math.max(...samples.map((s) => s.usage.peakRss)),
		note: unexpected ? `${unexpected} unexpected answers or errors` : undefined,
	}
}

/**
 * Measures every arm with wrk: a 1 s warm-up each, then `ctx.opts.rounds`
 * interleaved rounds. Returns one row per arm, in order, not yet recorded.
 */
export async function measureWrkArms(ctx: BenchContext, arms: readonly WrkArm[]): Promise<Row[]> {
	const samples = new Map<WrkArm, WrkSample[]>(arms.map((a) => [a, []]))
	for (const arm of arms)
		await wrk(arm.request, { connections: arm.connections ?? 64, seconds: 1, rotateUsers: arm.rotateUsers })
	await interleave(ctx.opts.rounds, arms, async (arm) => {
		samples.get(arm)?.push(
			await wrkSample(ctx, arm.target, arm.request, {
				connections: arm.connections ?? 64,
				rotateUsers: arm.rotateUsers,
			}),
		)
	})
	return arms.map((arm) => wrkRow(arm, samples.get(arm) ?? []))
}
