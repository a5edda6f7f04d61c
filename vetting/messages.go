// Package vetting vets a run's addresses over queues: the lookup and verdict messages, the
// worker loop that answers lookups with verdicts, and the gathering of a run's verdicts. The
// audit runs it in process over queue.Memory; a fleet runs the same parts over SQS.
package vetting

import (
	"encoding/json"
	"fmt"

	"github.com/sgvet/sgvet/reputation"
)

// MessageVersion is the version of the queue messages' JSON.
const MessageVersion = 1

// MaxAddressesPerMessage is the most targets one lookup message carries: one MetaDefender
// bulk request.
const MaxAddressesPerMessage = 50

// LookupMessage asks the workers about some addresses (and prefixes).
type LookupMessage struct {
	V         int                 `json:"v"`
	Run       string              `json:"run"`
	Addresses []reputation.Target `json:"addresses"`
}

// VerdictsMessage carries the verdicts on one lookup message's addresses.
type VerdictsMessage struct {
	V        int                  `json:"v"`
	Run      string               `json:"run"`
	Verdicts []reputation.Verdict `json:"verdicts"`
}

// EncodeLookup returns the lookup message of run for targets.
func EncodeLookup(run string, targets []reputation.Target) ([]byte, error) {
	return json.Marshal(LookupMessage{V: MessageVersion, Run: run, Addresses: targets})
}

// DecodeLookup reads a lookup message; a message of another version is an error.
func DecodeLookup(body []byte) (LookupMessage, error) {
	var m LookupMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("decode lookup message: %w", err)
	}
	if m.V != MessageVersion {
		return m, fmt.Errorf("decode lookup message: version %d, want %d", m.V, MessageVersion)
	}
	return m, nil
}

// EncodeVerdicts returns the verdicts message of run for verdicts.
func EncodeVerdicts(run string, verdicts []reputation.Verdict) ([]byte, error) {
	return json.Marshal(VerdictsMessage{V: MessageVersion, Run: run, Verdicts: verdicts})
}

// DecodeVerdicts reads a verdicts message; a message of another version is an error.
func DecodeVerdicts(body []byte) (VerdictsMessage, error) {
	var m VerdictsMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("decode verdicts message: %w", err)
	}
	if m.V != MessageVersion {
		return m, fmt.Errorf("decode verdicts message: version %d, want %d", m.V, MessageVersion)
	}
	return m, nil
}
