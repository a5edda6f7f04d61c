package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/sgvet/sgvet/queue"
	"github.com/sgvet/sgvet/reputation"
)

// messageVersion is the version of the queue messages' JSON.
const messageVersion = 1

// maxAddressesPerMessage is the most targets one lookup message carries: one MetaDefender
// bulk request.
const maxAddressesPerMessage = 50

// lookupMessage asks the workers about some addresses (and prefixes).
type lookupMessage struct {
	V         int                 `json:"v"`
	Run       string              `json:"run"`
	Addresses []reputation.Target `json:"addresses"`
}

// verdictsMessage carries the verdicts on one lookup message's addresses.
type verdictsMessage struct {
	V        int                  `json:"v"`
	Run      string               `json:"run"`
	Verdicts []reputation.Verdict `json:"verdicts"`
}

// lookupBody returns the lookup message of run for targets.
func lookupBody(run string, targets []reputation.Target) ([]byte, error) {
	return json.Marshal(lookupMessage{V: messageVersion, Run: run, Addresses: targets})
}

func decodeLookup(body []byte) (lookupMessage, error) {
	var m lookupMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("decode lookup message: %w", err)
	}
	if m.V != messageVersion {
		return m, fmt.Errorf("decode lookup message: version %d, want %d", m.V, messageVersion)
	}
	return m, nil
}

func decodeVerdicts(body []byte) (verdictsMessage, error) {
	var m verdictsMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("decode verdicts message: %w", err)
	}
	if m.V != messageVersion {
		return m, fmt.Errorf("decode verdicts message: version %d, want %d", m.V, messageVersion)
	}
	return m, nil
}

// work is one worker: it takes lookup messages, vets their addresses and publishes the
// verdicts, acknowledging a message only once its verdicts are sent. It returns when the
// lookups queue is closed and empty, or ctx ends.
func work(ctx context.Context, lookups, results queue.Transport, vetter *reputation.Vetter, log *slog.Logger) error {
	for {
		msgs, err := lookups.Receive(ctx, 1)
		if errors.Is(err, queue.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, msg := range msgs {
			m, err := decodeLookup(msg.Body)
			if err != nil {
				// Left unacknowledged: the queue's redrive policy deals with it.
				log.Error("lookup message skipped", "id", msg.ID, "err", err)
				continue
			}
			vetted, err := vetter.Vet(ctx, m.Addresses)
			if err != nil {
				return err
			}
			out := verdictsMessage{V: messageVersion, Run: m.Run}
			for _, r := range vetted {
				out.Verdicts = append(out.Verdicts, r.Verdicts...)
			}
			body, err := json.Marshal(out)
			if err != nil {
				return err
			}
			if err := results.Send(ctx, body); err != nil {
				return err
			}
			if err := lookups.Ack(ctx, msg.Receipt); err != nil {
				return err
			}
		}
	}
}

// vetInProcess runs the lookups through in-memory queues and workers, as a fleet would
// through SQS, and returns every provider's verdict on each target, in the Vetter's
// provider order. With settle set, a target that some provider answered for and none
// called malicious or suspicious keeps only that: see gathering.
func vetInProcess(ctx context.Context, run string, targets []reputation.Target, vetter *reputation.Vetter, workers int, settle bool, log *slog.Logger) ([]reputation.Result, error) {
	// The gathering holds the targets from here on; the lookup messages are made one at a
	// time as the workers take them.
	gathered := newGathering(targets)
	gathered.settle = settle
	// A message is invisible to other workers for as long as a run could take: the
	// in-process workers never die without ending the run.
	const visibility = 1 << 62
	lookups := queue.NewMemory(2*workers+1, visibility)
	results := queue.NewMemory(2*workers+1, visibility)
	defer lookups.Close()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer lookups.Close()
		chunk := make([]reputation.Target, 0, maxAddressesPerMessage)
		for start := 0; start < len(gathered.out); start += maxAddressesPerMessage {
			chunk = chunk[:0]
			for _, r := range gathered.out[start:min(start+maxAddressesPerMessage, len(gathered.out))] {
				chunk = append(chunk, r.Target)
			}
			body, err := lookupBody(run, chunk)
			if err != nil {
				return err
			}
			if err := lookups.Send(gctx, body); err != nil {
				return err
			}
		}
		return nil
	})
	wg, wctx := errgroup.WithContext(gctx)
	for range workers {
		wg.Go(func() error { return work(wctx, lookups, results, vetter, log) })
	}
	g.Go(func() error {
		defer results.Close()
		return wg.Wait()
	})

	g.Go(func() error {
		for {
			msgs, err := results.Receive(gctx, 10)
			if errors.Is(err, queue.ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			for _, msg := range msgs {
				m, err := decodeVerdicts(msg.Body)
				if err != nil {
					return err
				}
				gathered.add(m.Verdicts)
				if err := results.Ack(gctx, msg.Receipt); err != nil {
					return err
				}
			}
		}
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return gathered.results(), nil
}

// gathering collects the verdicts of a run's messages by target, in the order of the
// targets, holding as little as it can: a million addresses make a million results.
type gathering struct {
	out   []reputation.Result
	index reputation.ResultIndex
	// strings and categories hold one copy of each provider name, status, country, reason
	// and list of categories that decoding made many of.
	strings    map[string]string
	categories map[string][]string
	// settle is set when nothing will show the verdicts on a target that a provider
	// answered for and none called malicious or suspicious: a report shows the verdicts of
	// bad and unvetted addresses only, and only the history stores the others. Such a
	// target's verdicts are then replaced by one bare clean verdict, held once per
	// provider in settled, so that an estate of a million clean addresses does not keep a
	// million verdicts.
	settle  bool
	settled map[string][]reputation.Verdict
	// kept lists the runs of the message being added that are filed as they are.
	kept []keptRun
}

func newGathering(targets []reputation.Target) *gathering {
	g := &gathering{
		out:        make([]reputation.Result, len(targets)),
		strings:    map[string]string{},
		categories: map[string][]string{},
	}
	for i, t := range targets {
		g.out[i].Target = t
	}
	g.index = reputation.NewResultIndex(g.out)
	return g
}

// find returns the index in out of target t, and false if the run did not ask about t. Of
// a target given twice the first is found; the second, which gets no verdict, is left out
// of the results.
func (g *gathering) find(t reputation.Target) (int32, bool) {
	found := g.index.Lookup(t)
	if len(found) == 0 {
		return 0, false
	}
	return found[0], true
}

// add files the verdicts of one message. A target's verdicts that are next to each other
// in the message are kept in one array of the message's length, not copied one by one (the
// decoder's own array has room to spare); verdicts on a target the run did not ask about
// are dropped.
func (g *gathering) add(vs []reputation.Verdict) {
	g.kept = g.kept[:0]
	for start := 0; start < len(vs); {
		end := start + 1
		for end < len(vs) && vs[end].Target == vs[start].Target {
			end++
		}
		run := vs[start:end:end]
		for i := range run {
			g.intern(&run[i])
		}
		if i, ok := g.find(run[0].Target); ok {
			r := &g.out[i]
			if r.Verdicts == nil {
				r.Verdicts = run
				g.kept = append(g.kept, keptRun{result: i, start: start, end: end})
			} else {
				r.Verdicts = append(r.Verdicts, run...)
			}
			if g.settle {
				g.settleVerdicts(r)
			}
		}
		start = end
	}
	// The runs still held in vs move to an array of its length.
	var own []reputation.Verdict
	for _, k := range g.kept {
		r := &g.out[k.result]
		if len(r.Verdicts) == 0 || &r.Verdicts[0] != &vs[k.start] {
			continue // settled, or appended to since
		}
		if own == nil {
			own = make([]reputation.Verdict, len(vs))
			copy(own, vs)
		}
		r.Verdicts = own[k.start:k.end:k.end]
	}
}

// keptRun is a target's run of verdicts in a message: the result it was filed under, and
// where it is in the message.
type keptRun struct {
	result     int32
	start, end int
}

// settleVerdicts replaces the verdicts of r by one bare clean verdict of the first provider
// that answered, if some provider answered and none called r's target malicious or
// suspicious. The verdict is shared, and full: a verdict added later is appended to a copy.
func (g *gathering) settleVerdicts(r *reputation.Result) {
	if reputation.Worst(r.Verdicts) != reputation.Clean {
		return // none known, or some bad
	}
	provider := r.Verdicts[slices.IndexFunc(r.Verdicts, reputation.Verdict.Known)].Provider
	vs, ok := g.settled[provider]
	if !ok {
		if g.settled == nil {
			g.settled = map[string][]reputation.Verdict{}
		}
		vs = []reputation.Verdict{{Provider: provider, Status: reputation.Clean}}
		g.settled[provider] = vs
	}
	r.Verdicts = vs
}

// intern replaces the strings of v that many verdicts share with one copy of each.
func (g *gathering) intern(v *reputation.Verdict) {
	for _, s := range []*string{&v.Provider, &v.Country, &v.Reason} {
		*s = g.string(*s)
	}
	v.Status = reputation.Status(g.string(string(v.Status)))
	if len(v.Categories) > 0 {
		k := strings.Join(v.Categories, "\x00")
		if c, ok := g.categories[k]; ok {
			v.Categories = c
		} else if len(g.categories) < maxInterned {
			g.categories[k] = slices.Clip(v.Categories)
		}
	}
}

// maxInterned bounds how many strings a gathering holds one copy of: a provider whose
// reasons name each address would otherwise fill it with strings no other verdict has.
const maxInterned = 4096

// string returns the copy of s that the gathering holds, holding s if it has room.
func (g *gathering) string(s string) string {
	if c, ok := g.strings[s]; ok || s == "" {
		return c
	}
	if len(g.strings) < maxInterned {
		g.strings[s] = s
	}
	return s
}

// results returns the targets that got verdicts, with their verdicts, in the order of
// the targets.
func (g *gathering) results() []reputation.Result {
	out := g.out[:0]
	for _, r := range g.out {
		if len(r.Verdicts) > 0 {
			out = append(out, r)
		}
	}
	clear(g.out[len(out):])
	g.index = reputation.ResultIndex{}
	return out
}
