import type { Metric, Registry } from 'prom-client'

// prom-client hashes the labels object on every inc/observe (children from
// labels() too): about 2 µs per download on the profile of the hot path. The
// metrics updated per download keep plain numbers per label set instead,
// chosen by an index the caller computes once, and hand prom-client the
// usual JSON at scrape time, so the registry, the text exposition and the
// cross-worker aggregation are prom-client's own.

type Labels = Readonly<Record<string, string>>

/** One sample, as prom-client's registries and aggregator read them. */
interface Sample {
	readonly labels: Labels
	readonly value: number
	readonly metricName?: string
}

/** A metric's JSON, as prom-client's `get()` returns it at run time. */
interface MetricJson {
	readonly name: string
	readonly help: string
	readonly type: 'counter' | 'histogram'
	readonly aggregator: 'sum'
	readonly values: readonly Sample[]
}

/** The part of prom-client's metric interface a registry reads. */
interface RegistryMetric {
	readonly name: string
	readonly help: string
	readonly type: 'counter' | 'histogram'
	readonly aggregator: 'sum'
	get(): Promise<MetricJson>
	reset(): void
}

// prom-client types registerMetric() as taking its own classes, while the
// registry only ever reads name, help, type, aggregator and get(): the one cast.
const register = (registry: Registry, metric: RegistryMetric) => registry.registerMetric(metric as unknown as Metric)

/** A counter over a fixed list of label sets: `inc(i, n)` adds to the i-th. */
export class HotCounter implements RegistryMetric {
	readonly type = 'counter'
	readonly aggregator = 'sum'
	readonly #values: number[]

	constructor(
		readonly name: string,
		readonly help: string,
		readonly labelSets: readonly Labels[],
		registry: Registry,
	) {
		this.#values = labelSets.map(() => 0)
		register(registry, this)
	}

	/** Adds `by` (default 1) to the counter of label set `index`. */
	inc(index: number, by = 1): void {
		this.#values[index] = (this.#values[index] ?? 0) + by
	}

	async get(): Promise<MetricJson> {
		return {
			name: this.name,
			help: this.help,
			type: this.type,
			aggregator: this.aggregator,
			values: this.labelSets.map((labels, i) => ({ labels, value: this.#values[i] ?? 0 })),
		}
	}

	reset(): void {
		this.#values.fill(0)
	}
}

/** A histogram whose label sets are created on first use by key (bounded by the caller). */
export class HotHistogram implements RegistryMetric {
	readonly type = 'histogram'
	readonly aggregator = 'sum'
	readonly #series = new Map<string, { labels: Labels; buckets: number[]; sum: number; count: number }>()

	constructor(
		readonly name: string,
		readonly help: string,
		readonly upperBounds: readonly number[],
		registry: Registry,
	) {
		register(registry, this)
	}

	/** Records `value` for the series `key`; `labels` is read only the first time a key is seen. */
	observe(key: string, labels: () => Labels, value: number): void {
		let series = this.#series.get(key)
		if (series === undefined) {
			series = { labels: labels(), buckets: this.upperBounds.map(() => 0), sum: 0, count: 0 }
			this.#series.set(key, series)
		}
		// Non-cumulative here; made cumulative at scrape time.
		let i = 0
		while (i < this.upperBounds.length && value > (this.upperBounds[i] ?? 0)) i++
		if (i < series.buckets.length) series.buckets[i] = (series.buckets[i] ?? 0) + 1
		series.sum += value
		series.count++
	}

	async get(): Promise<MetricJson> {
		const values: Sample[] = []
		const bucket = `${this.name}_bucket`
		for (const { labels, buckets, sum, count } of this.#series.values()) {
			let cumulative = 0
			this.upperBounds.forEach((le, i) => {
				cumulative += buckets[i] ?? 0
				values.push({ labels: { le: String(le), ...labels }, value: cumulative, metricName: bucket })
			})
			values.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: bucket })
			values.push({ labels, value: sum, metricName: `${this.name}_sum` })
			values.push({ labels, value: count, metricName: `${this.name}_count` })
		}
		return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
	}

	reset(): void {
		this.#series.clear()
	}
}
