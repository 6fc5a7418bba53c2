package chaos

import (
	"fmt"
	"sort"
	"strings"
)

// checkCommands holds the twin commands' answers to what the gateway
// carried out (its journal), command by command (its hash, the
// same for every grant of one Idempotency-Key):
//   - at most once: no command is carried out twice;
//   - a command answered done was carried out, exactly once, at its valve;
//   - a command whose final answer was a refusal was not carried out, by
//     that attempt or an earlier one whose answer was lost;
//   - nothing was carried out that the workload did not send;
//   - an answer of success names the command that was sent.
//
// A command without a final answer (every attempt unanswered, 503, or 409
// while its key was held) may have been carried out once or not at all;
// it is listed as unresolved, with its answers.
func checkCommands(ops []Op, commands map[string]Op, executions []Execution) (bad, unresolved []string) {
	executed := map[string][]Execution{}
	for _, e := range executions {
		h := strings.ToLower(e.Command)
		executed[h] = append(executed[h], e)
	}
	final := map[string]int{} // command => Applied or Refused; absent: no final answer
	answers := map[string][]string{}
	for _, o := range ops {
		if o.Kind != KindCommand || o.Abandoned {
			continue
		}
		answers[o.Digest] = append(answers[o.Digest], answerOf(o))
		if o.Status >= 200 && o.Status < 300 && o.Err != "" {
			bad = append(bad, fmt.Sprintf("command %s (key %s): %s", short(o.Digest), o.Key, o.Err))
		}
		if oc := o.Outcome(); oc != Unknown {
			if prev, ok := final[o.Digest]; ok && prev != oc {
				bad = append(bad, fmt.Sprintf("command %s (key %s) answered both done and refused: %v", short(o.Digest), o.Key, answers[o.Digest]))
			}
			final[o.Digest] = oc
		}
	}
	for h, c := range commands {
		runs := executed[h]
		for _, e := range runs {
			if e.Actuator != "" && e.Actuator != c.Actuator {
				bad = append(bad, fmt.Sprintf("command %s (key %s) for %s was carried out at %s", short(h), c.Key, c.Actuator, e.Actuator))
			}
		}
		if len(runs) > 1 {
			bad = append(bad, fmt.Sprintf("command %s (key %s) carried out %d times (nonces %s); answers %v", short(h), c.Key, len(runs), nonces(runs), answers[h]))
		}
		switch oc, ok := final[h]; {
		case !ok:
			unresolved = append(unresolved, fmt.Sprintf("%s (key %s, carried out %d times): %v", short(h), c.Key, len(runs), answers[h]))
		case oc == Applied && len(runs) == 0:
			bad = append(bad, fmt.Sprintf("command %s (key %s) answered done, never carried out; answers %v", short(h), c.Key, answers[h]))
		case oc == Refused && len(runs) > 0:
			bad = append(bad, fmt.Sprintf("command %s (key %s) refused, yet carried out; answers %v", short(h), c.Key, answers[h]))
		}
	}
	for h, runs := range executed {
		if _, ok := commands[h]; !ok {
			bad = append(bad, fmt.Sprintf("carried out at %s: command %s, which the workload did not send", runs[0].Actuator, short(h)))
		}
	}
	sort.Strings(bad)
	sort.Strings(unresolved)
	return bad, unresolved
}

// answerOf is an answer as the findings show it.
func answerOf(o Op) string {
	s := fmt.Sprintf("%d@r%d", o.Status, o.Node+1)
	for _, part := range []string{o.Type, o.Result, o.Reason} {
		if part != "" {
			s += " " + part
		}
	}
	return s
}

func nonces(runs []Execution) string {
	var list []string
	for _, e := range runs {
		list = append(list, fmt.Sprint(e.Nonce))
	}
	return strings.Join(list, ",")
}
