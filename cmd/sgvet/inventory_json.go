package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/sgvet/sgvet/collector"
)

// writeInventoryJSON writes inv as json.Encoder with a two-space indent would, a list at a
// time (see streamInventoryJSON).
func writeInventoryJSON(w io.Writer, inv *collector.Inventory) error {
	return streamInventoryJSON(w, inv, func(head *collector.Inventory) any { return head })
}

// streamInventoryJSON writes the document that wrap makes of an inventory (inv itself, or a
// document that embeds it) as json.Encoder with a two-space indent would write wrap(inv),
// without holding the whole text in memory: 100,000 rules make 54 MB of it, which the
// encoder would build, and then indent into a second buffer, before writing a byte. The
// document is encoded with inv's groups, rules and public sources left out, and those
// lists, most of the text, are written in their places an element at a time.
func streamInventoryJSON(w io.Writer, inv *collector.Inventory, wrap func(*collector.Inventory) any) error {
	head := *inv
	head.Groups, head.Rules, head.Public = nil, nil, nil
	whole, err := json.MarshalIndent(wrap(&head), "", "  ")
	if err != nil {
		return err
	}
	lists := []struct {
		field string
		write func(*bufio.Writer) error
	}{
		{"groups", func(bw *bufio.Writer) error { return writeJSONList(bw, inv.Groups) }},
		{"rules", func(bw *bufio.Writer) error { return writeJSONList(bw, inv.Rules) }},
		{"public", func(bw *bufio.Writer) error { return writeJSONList(bw, inv.Public) }},
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	rest := whole
	for _, list := range lists {
		// The inventory's own fields are at an indent of two spaces, and a line break
		// inside a string is escaped, so this text occurs once: where the list goes.
		slot := "\n  \"" + list.field + "\": "
		before, after, ok := bytes.Cut(rest, []byte(slot+"null"))
		if !ok {
			return fmt.Errorf("inventory JSON has no %s field", list.field)
		}
		bw.Write(before)
		bw.WriteString(slot)
		if err := list.write(bw); err != nil {
			return err
		}
		rest = after
	}
	bw.Write(rest)
	bw.WriteByte('\n')
	return bw.Flush()
}

// writeJSONList writes list as the value of a field of an indented document's top level:
// null when nil, [] when empty, or else each element on lines of its own at an indent of
// four spaces. One encoder, and its buffer, serve every element.
func writeJSONList[T any](bw *bufio.Writer, list []T) error {
	switch {
	case list == nil:
		_, err := bw.WriteString("null")
		return err
	case len(list) == 0:
		_, err := bw.WriteString("[]")
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("    ", "  ")
	bw.WriteByte('[')
	for i := range list {
		buf.Reset()
		if err := enc.Encode(&list[i]); err != nil {
			return err
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		// Encode ends the element with a line break, which the next separator replaces.
		if _, err := bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))); err != nil {
			return err
		}
	}
	_, err := bw.WriteString("\n  ]")
	return err
}
