// What every target and scenario is given: options, paths, the shared
// redis-server, the report being written, and ownership of started targets.

import { join } from 'node:path'
import type { BenchRedis } from './redis'
import { type Row, rowLine, type Section } from './report'

/** Command-line options. */
export interface BenchOptions {
	quick: boolean
	/** Seconds per wrk run. */
	seconds: number
	/** Interleaved rounds per scenario. */
	rounds: number
	/** Scenario ids to run; all when empty. */
	only: string[]
	/** Start download-gate under `bun --cpu-prof`. */
	profile: boolean
	/** Runtime of the Fastify fixture. */
	fastifyRuntime: 'bun' | 'node'
	/** Checkout whose `src/index.ts` is download-gate (default: this one). */
	serviceDir: string
}

/** Something a scenario started and the runner stops. */
export interface Stoppable {
	stop(): Promise<void>
}

/** Paths and secrets shared by the targets. */
export const BENCH_DIR = join(import.meta.dir, '..')
export const ROOT = join(BENCH_DIR, '..')
export const DATA = join(BENCH_DIR, '.data')
export const STORAGE = join(DATA, 'storage')
export const PROFILES = join(BENCH_DIR, 'results', 'profiles')
export const API_KEY = 'bench-api-key-0123456789abcdef'
export const SECRET = 'bench-secret-0123456789abcdef0123456789'
/** Users u0…u(USERS-1) all see the same files (u1… through symlinks to u0). */
export const USERS = 100
export const KiB = 1024
export const MiB = 1024 * KiB

/** Prints a timestamped progress line. */
export const log = (...parts: unknown[]): void =>
	console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...parts)

/** The state of one bench run. */
export class BenchContext {
	readonly sections: Section[] = []
	/** Things said once at the top of the report (skipped targets, runtimes). */
	readonly notices = new Set<string>()
	private owned: Stoppable[] = []

	constructor(
		readonly opts: BenchOptions,
		readonly redis: BenchRedis,
		readonly started: Date,
	) {}

	/** Awaits a started target and stops it when the current scenario ends, even on failure. */
	async own<T extends Stoppable>(starting: Promise<T>): Promise<T> {
		const target = await starting
		this.owned.push(target)
		return target
	}

	/** Stops everything `own`ed so far, newest first. */
	async stopOwned(): Promise<void> {
		const list = this.owned.reverse()
		this.owned = []
		for (const t of list) await t.stop().catch((err: unknown) => log('stop failed:', err))
	}

	/** Opens a report section for a scenario. */
	section(s: Omit<Section, 'rows' | 'notes'>): Section {
		const section: Section = { ...s, rows: [], notes: [] }
		this.sections.push(section)
		return section
	}

	/** Adds a row to a section and prints it. */
	record(section: Section, row: Row): void {
		section.rows.push(row)
		log(rowLine(section, row))
	}

	/** A file name prefix for this run's artefacts, e.g. `2026-11-24-quick`. */
	get runName(): string {
		return `${this.started.toISOString().slice(0, 10)}${this.opts.quick ? '-quick' : ''}`
	}
}
