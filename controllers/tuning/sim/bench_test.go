package sim

import "testing"

func BenchmarkRun(b *testing.B) {
	sc := DefaultScenario()
	tr := Traces()[1]
	for b.Loop() {
		Run(sc, tr, Static{Label: "s", Settings: sc.Start})
	}
}
