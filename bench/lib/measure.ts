// Drives a target with wrk (small bodies) or curl (large ones, slow
// clients) while its process tree is watched, interleaving targets round by
// round (A/B/C, A/B/C…) so drift on a shared machine does not favour
// whichever ran first.

import type { RunningTarget } from '../targets/types'
import type { BenchContext } from './context'
import { parallelDownloads, slowClients } from './curl'
import type { HttpRequest } from './http'
import { type Usage, watchUsage } from './proc-stats'
import { fmt, median, type RefKind, type Row } from './report'
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

/** The processes whose CPU is part of a target's cost but shown apart: its redis-server and its backends, by name. */
export function sideProcesses(target: RunningTarget): Record<string, number[]> {
	const side: Record<string, number[]> = target.redisPid === null ? {} : { Redis: [target.redisPid] }
	for (const [name, pid] of Object.entries(target.backends ?? {})) side[name] = [pid]
	return side
}

/** Runs `fn` while watching `target`'s process trees and the CPU of its side processes (see `watchUsage`). */
export function watchTarget<T>(
	target: RunningTarget,
	fn: () => Promise<T>,
	sampleMs?: number,
): Promise<{ result: T; usage: Usage }> {
	return watchUsage(target.pids, sideProcesses(target), fn, sampleMs)
}

/**
 * The figures of a row that come from watching the tree over `usages`: CPU
 * per unit of work (`units` requests or downloads over all of them; none
 * when 0), side CPU per unit for each side watched, and the memory peaks.
 */
export function usageFigures(
	usages: readonly Usage[],
	units: number,
): Pick<Row, 'cpuPerReqS' | 'sideCpuPerReqS' | 'peakRssBytes' | 'peakPssBytes' | 'peakAnonBytes'> {
	const names = [...new Set(usages.flatMap((u) => Object.keys(u.sideCpuS)))]
	const sum = (f: (u: Usage) => number) => usages.reduce((a, u) => a + f(u), 0)
	return {
		cpuPerReqS: units ? sum((u) => u.cpuS) / units : undefined,
		sideCpuPerReqS:
			units && names.length
				? Object.fromEntries(names.map((n) => [n, sum((u) => u.sideCpuS[n] ?? 0) / units]))
				: undefined,
		peakRssBytes: Math.max(...usages.map((u) => u.peakRss)),
		peakPssBytes: Math.max(...usages.map((u) => u.peakPss)),
		peakAnonBytes: Math.max(...usages.map((u) => u.peakAnon)),
	}
}

/** One wrk run of `req` against `target`, watching its tree and its side processes. */
export function wrkSample(
	ctx: BenchContext,
	target: RunningTarget,
	req: HttpRequest,
	opts: { connections: number; rotateUsers?: number; seconds?: number },
): Promise<WrkSample> {
	return watchTarget(target, () =>
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
		...usageFigures(
			samples.map((s) => s.usage),
			requests,
		),
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

/** One target under one request in a curl scenario (large files). */
export interface DownloadArm {
	target: RunningTarget
	request: HttpRequest
	variant?: string
	ref?: RefKind
	group?: string
}

const rowHead = (arm: DownloadArm): Row => ({
	target: arm.target.name,
	variant: arm.variant,
	runtime: arm.target.runtime,
	processes: arm.target.processes,
	group: arm.group,
	ref: arm.ref,
})

/**
 * `parallel` simultaneous curl downloads of each arm's request, in
 * `ctx.opts.rounds` interleaved rounds. Rows: median MB/s over all of them
 * per run, CPU (and side CPU) per download, memory peaks.
 */
export async function measureParallelArms(
	ctx: BenchContext,
	arms: readonly DownloadArm[],
	parallel: number,
): Promise<Row[]> {
	const runs = new Map<DownloadArm, { mbps: number; usage: Usage; failures: number }[]>(arms.map((a) => [a, []]))
	await interleave(ctx.opts.rounds, arms, async (arm) => {
		const { result, usage } = await watchTarget(arm.target, () => parallelDownloads(arm.request, parallel))
		runs.get(arm)?.push({ mbps: result.mbps, usage, failures: result.failures })
	})
	return arms.map((arm) => {
		const list = runs.get(arm) ?? []
		const failures = list.reduce((a, r) => a + r.failures, 0)
		return {
			...rowHead(arm),
			value: median(list.map((r) => r.mbps)),
			runs: list.map((r) => r.mbps),
			...usageFigures(
				list.map((r) => r.usage),
				parallel * list.length,
			),
			note: failures ? `${failures} downloads failed` : undefined,
		}
	})
}

/**
 * `clients` concurrent rate-limited curls on each arm's request for
 * `seconds`, in `ctx.opts.rounds` interleaved rounds, memory sampled every
 * 50 ms. Rows: median MB/s received by all clients together, memory peaks,
 * the median idle RSS before each run, and a note of idle → peak and failures.
 */
export async function measureSlowClientArms(
	ctx: BenchContext,
	arms: readonly DownloadArm[],
	opts: { clients: number; rate: string; seconds: number },
): Promise<Row[]> {
	const runs = new Map<DownloadArm, { mbps: number; usage: Usage; failures: number }[]>(arms.map((a) => [a, []]))
	await interleave(ctx.opts.rounds, arms, async (arm) => {
		const { result, usage } = await watchUsage(arm.target.pids, {}, () => slowClients(arm.request, opts), 50)
		runs.get(arm)?.push({ mbps: result.bytes / 1e6 / opts.seconds, usage, failures: result.failures })
		// Let the server settle (buffers freed, GC) before the next one is sampled idle.
		await Bun.sleep(500)
	})
	return arms.map((arm) => {
		const list = runs.get(arm) ?? []
		const { peakRssBytes, peakPssBytes, peakAnonBytes } = usageFigures(
			list.map((r) => r.usage),
			0,
		)
		const idle = median(list.map((r) => r.usage.idleRss))
		const failures = list.reduce((a, r) => a + r.failures, 0)
		return {
			...rowHead(arm),
			value: median(list.map((r) => r.mbps)),
			peakRssBytes,
			peakPssBytes,
			peakAnonBytes,
			idleRssBytes: idle,
			note: [
				`idle RSS ${fmt(idle / 2 ** 20, 1)} MiB, +${fmt(((peakRssBytes ?? 0) - idle) / 2 ** 20, 1)} MiB under load`,
				failures ? `${failures} clients failed` : '',
			]
				.filter(Boolean)
				.join('; '),
		}
	})
}
