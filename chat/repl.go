package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LineReader reads the user's lines; io.EOF ends the session.
type LineReader interface {
	ReadLine() (string, error)
}

// Hooks let the terminal front end prepare for a reply (leave raw mode, arm
// Ctrl-C) and come back after it. Reply returns the context of one reply and
// a function to call when it is over.
type Hooks struct {
	Reply func() (context.Context, func())
}

const help = `Commands:
  /model NAME          use another model
  /temperature X       set the temperature (/temperature off: do not send it)
  /top_p X             set top_p (off: do not send it)
  /max_tokens N        set max_tokens (off: do not send it)
  /system TEXT         set the system prompt (empty: none)
  /stats               the session's table of turns and totals
  /history             the conversation so far
  /reset               forget the conversation (settings stay)
  /save FILE           save the transcript with per-turn stats (.json or .md)
  /help                this list
  /quit                end the session (Ctrl-D too)
Ctrl-C stops a reply in progress.`

// Run talks with the user until /quit or end of input. Each reply streams to
// out and is followed by its stats line.
func (s *Session) Run(in LineReader, out io.Writer, hooks Hooks) error {
	for {
		line, err := in.ReadLine()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "/"):
			if quit := s.command(line, out); quit {
				return nil
			}
			continue
		}
		ctx, done := context.Background(), func() {}
		if hooks.Reply != nil {
			ctx, done = hooks.Reply()
		}
		t := s.Send(ctx, line, out)
		done()
		fmt.Fprintln(out)
		if t.Error != "" {
			fmt.Fprintf(out, "! %s\n", t.Error)
		}
		if t.Call != nil {
			fmt.Fprintln(out, StatsLine(t.Call, s.Totals()))
		}
	}
}

// command runs one slash command and reports whether the session ends.
func (s *Session) command(line string, out io.Writer) bool {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	st := s.Settings()
	float := func(p **float64, label string) {
		if arg == "off" {
			*p = nil
			fmt.Fprintf(out, "%s: not sent\n", label)
			return
		}
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil {
			fmt.Fprintf(out, "! %s wants a number, got %q\n", label, arg)
			return
		}
		*p = &v
		fmt.Fprintf(out, "%s = %g\n", label, v)
	}
	switch name {
	case "/quit", "/exit":
		return true
	case "/help":
		fmt.Fprintln(out, help)
	case "/model":
		if arg == "" {
			fmt.Fprintf(out, "model = %s\n", st.Model)
			break
		}
		st.Model = arg
		fmt.Fprintf(out, "model = %s\n", arg)
	case "/temperature":
		float(&st.Temperature, "temperature")
	case "/top_p":
		float(&st.TopP, "top_p")
	case "/max_tokens":
		if arg == "off" {
			st.MaxTokens = nil
			fmt.Fprintln(out, "max_tokens: not sent")
			break
		}
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n <= 0 {
			fmt.Fprintf(out, "! max_tokens wants a positive integer, got %q\n", arg)
			break
		}
		st.MaxTokens = &n
		fmt.Fprintf(out, "max_tokens = %d\n", n)
	case "/system":
		st.System = arg
		fmt.Fprintf(out, "system prompt set (%d characters)\n", len(arg))
	case "/stats":
		s.WriteStats(out)
	case "/history":
		for _, h := range s.History() {
			fmt.Fprintf(out, "%s: %s\n", h[0], h[1])
		}
	case "/reset":
		s.Reset()
		fmt.Fprintln(out, "conversation forgotten")
	case "/save":
		if arg == "" {
			fmt.Fprintln(out, "! /save wants a file name (.json or .md)")
			break
		}
		if err := s.Save(arg); err != nil {
			fmt.Fprintf(out, "! %v\n", err)
			break
		}
		fmt.Fprintf(out, "saved %s\n", arg)
	default:
		fmt.Fprintf(out, "! unknown command %s; /help lists them\n", name)
	}
	return false
}

// Save writes the transcript with per-turn stats: JSON for a .json file,
// Markdown otherwise.
func (s *Session) Save(path string) error {
	var b []byte
	if strings.EqualFold(filepath.Ext(path), ".json") {
		var err error
		b, err = json.MarshalIndent(struct {
			Settings Settings `json:"settings"`
			Turns    []Turn   `json:"turns"`
			Totals   Totals   `json:"totals"`
		}{s.cfg.Settings, s.Turns, s.Totals()}, "", "  ")
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
	} else {
		var sb strings.Builder
		fmt.Fprintf(&sb, "# Chat with %s\n\n", s.cfg.Settings.Model)
		for i, t := range s.Turns {
			fmt.Fprintf(&sb, "## Turn %d\n\n**You:** %s\n\n**%s:** %s\n\n", i+1, t.Prompt, s.cfg.Settings.Model, t.Reply)
			if t.Error != "" {
				fmt.Fprintf(&sb, "_error: %s_\n\n", t.Error)
			}
			if t.Call != nil {
				fmt.Fprintf(&sb, "`%s`\n\n", StatsLine(t.Call, Totals{}))
			}
		}
		sb.WriteString("## Totals\n\n```\n")
		s.WriteStats(&sb)
		sb.WriteString("```\n")
		b = []byte(sb.String())
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}
