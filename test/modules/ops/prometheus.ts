import parsePrometheusTextFormat from 'parse-prometheus-text-format'

/** One sample of a scrape, parsed by a real exposition parser. */
interface Sample {
	readonly value?: string
	readonly labels?: Record<string, string>
}
interface Family {
	readonly name: string
	readonly type: string
	readonly metrics: readonly Sample[]
}

/** A parsed scrape: values by metric name and labels (counters, gauges, and histogram counts). */
export interface Scrape {
	readonly names: readonly string[]
	/** The value of the series `name` whose labels include `labels`; 0 when absent. */
	value(name: string, labels?: Record<string, string>): number
}

/**
 * Parses Prometheus text exposition with `parse-prometheus-text-format`.
 * That parser folds a histogram's labelled series into one (it drops their
 * labels), so histograms are declared untyped first: each of their
 * `_bucket`, `_sum` and `_count` series is then parsed as a family of its own,
 * labels intact (read `<name>_count` for a histogram's count).
 */
export function parseScrape(text: string): Scrape {
	const families = parsePrometheusTextFormat(
		text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped'),
	) as Family[]
	return {
		names: families.map((f) => f.name),
		value(name, labels = {}) {
			// prom-client writes a histogram's series label set by label set, so one name can recur.
			const samples = families.filter((f) => f.name === name).flatMap((f) => f.metrics)
			const sample = samples.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
			return Number(sample?.value ?? 0)
		},
	}
}
