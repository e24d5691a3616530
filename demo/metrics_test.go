package demo

import (
	"math/rand/v2"
	"testing"
)

// TestHostModelReactsToFaults checks that a slowed service shows it in its
// gauges: more CPU and a growing work queue, and that memory stays bounded.
func TestHostModelReactsToFaults(t *testing.T) {
	spec := shopSpecs[3] // checkout, which has a work queue
	run := func(slow float64) hostSample {
		h := &hostState{queueName: spec.queue, cpuBase: spec.cpuBase, cpuPerRequest: spec.cpuPerReq,
			memBase: spec.memBase, memPerRequest: spec.memPerReq, memLimit: spec.memLimit}
		rng := rand.New(rand.NewPCG(1, 2))
		for range 60 {
			h.tick(rng, 1, 2, slow)
			if s := h.read(); s.memory < int64(spec.memBase) || s.memory > int64(spec.memBase+spec.memLimit) {
				t.Fatalf("memory %d outside [%v, %v]", s.memory, spec.memBase, spec.memBase+spec.memLimit)
			}
		}
		return h.read()
	}
	healthy, slowed := run(1), run(10)
	t.Logf("healthy %+v, slowed ×10 %+v", healthy, slowed)
	if slowed.cpu < healthy.cpu+0.2 {
		t.Errorf("CPU %.2f when slowed, %.2f when healthy", slowed.cpu, healthy.cpu)
	}
	if slowed.queue < 50 || healthy.queue > 20 {
		t.Errorf("queue depth %d when slowed, %d when healthy", slowed.queue, healthy.queue)
	}
}
