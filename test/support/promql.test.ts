import { describe, expect, test } from 'bun:test'
import { metricNames } from './promql'

// The metric-name extraction the deployment-file tests rely on to say an alert
// or a dashboard panel selects only metrics the service exposes.

describe('metricNames', () => {
	test('finds the selected metrics, not functions, labels, keywords or durations', () => {
		expect(
			metricNames(
				'histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{route!~"/x|/y"}[5m] offset 1h))) > 0.5 and on (job) b unless c_total{x="y"} > 1e3',
			),
		).toEqual(['a_bucket', 'b', 'c_total'])
		expect(metricNames('min(download_gate_store_up{service=~"$service"}) == 0')).toEqual(['download_gate_store_up'])
	})
})
