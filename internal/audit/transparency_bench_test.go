//go:build unix

package audit

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCheckpoint is one second of a node at 10,000 decisions/s as
// the transparency log sees it: the 10,000 events enter the node's tree
// (RFC 6962 hashing, tlog stored hashes written to the node's file), the node signs a checkpoint and
// its consistency proof from the previous one, and a witness parses it,
// verifies signature and proof and cosigns. ns/op is the CPU that second
// costs (one core), so ns/op / 1e9 is the share of a core it takes.
// "anchors" adds what the realm does on disk: the node's and the
// witness's atomic, fsynced writes of the kept checkpoint.
func BenchmarkCheckpoint(b *testing.B) {
	const perSecond = 10000
	event := make([]byte, 0, 400)
	ev, _ := json.Marshal(decision(1))
	for _, keepAnchors := range []bool{false, true} {
		b.Run(fmt.Sprintf("anchors=%v", keepAnchors), func(b *testing.B) {
			node, witness := testKey(b, "a"), testKey(b, "w")
			dir := b.TempDir()
			// As the node keeps it: hashes in a file, the compact range in memory.
			tree, err := newFileTree(filepath.Join(dir, "tree-hashes"))
			if err != nil {
				b.Fatal(err)
			}
			defer tree.close()
			var prev, accepted Checkpoint
			b.ReportAllocs()
			cpu0 := processCPU()
			for i := 0; b.Loop(); i++ {
				for j := range perSecond {
					event = append(append(event[:0], ev...), fmt.Sprint(i*perSecond+j)...)
					if err := tree.append(event); err != nil {
						b.Fatal(err)
					}
				}
				size := tree.size()
				root, err := tree.root(size)
				if err != nil {
					b.Fatal(err)
				}
				c, err := node.sign(size, root, nil)
				if err != nil {
					b.Fatal(err)
				}
				msg := published{Checkpoint: string(c.Note), Key: c.Key}
				if prev.Size > 0 {
					if msg.Proof, err = tree.consistency(prev.Size, size); err != nil {
						b.Fatal(err)
					}
					msg.From = prev.Size
				}
				data, err := json.Marshal(msg)
				if err != nil {
					b.Fatal(err)
				}
				if keepAnchors {
					if err := writeAnchor(filepath.Join(dir, ownAnchorFile), anchorOf(c)); err != nil {
						b.Fatal(err)
					}
				}
				prev = c

				// The witness.
				p, err := parsePublished(data)
				if err != nil {
					b.Fatal(err)
				}
				got, err := OpenCheckpoint([]byte(p.Checkpoint), c.Key)
				if err != nil {
					b.Fatal(err)
				}
				if accepted.Size > 0 {
					if err := VerifyConsistency(p.Proof, accepted.Size, accepted.Root, got.Size, got.Root); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := witness.cosign(got); err != nil {
					b.Fatal(err)
				}
				if keepAnchors {
					if err := writeAnchor(filepath.Join(dir, witnessedDir, "a.json"), anchorOf(got)); err != nil {
						b.Fatal(err)
					}
				}
				accepted = got
			}
			b.ReportMetric(float64(perSecond), "decisions/op")
			// CPU (user + system) per simulated second, apart from wall
			// time, which the anchors' fsyncs add to without using a core.
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
