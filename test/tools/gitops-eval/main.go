// gitops-eval: run sts-pilot's GitOps health checks the way Argo CD and Flux run
// them, on Kubernetes objects given as JSON, so the tests can check them against
// objects recorded from a real control plane.
//
//	gitops-eval < request.json > results.json
//
// Request: {"lua": "<script>", "openLibs": bool, "cel": {"current", "failed",
// "inProgress"}, "objects": [<object>, ...]}. Result: one entry per object,
// {"lua": {"status", "message"} | {"error"}, "flux": "Current" | "Failed" |
// "InProgress" | "Unknown", "fluxError"?}.
//
// Lua: gopher-lua, the VM Argo CD embeds. A customization from argocd-cm runs
// with the libraries Argo CD opens for it (package, base, table and a reduced
// os), or all of them with resource.customizations.useOpenLibs; the object is
// the global `obj`, numbers as Lua numbers, the script's returned table is the
// health. A status outside Argo CD's set is Unknown, as Argo CD makes it.
//
// CEL: cel-go with the environment Flux's kustomize-controller builds for
// healthCheckExprs (parsed, not compiled; the object's top-level fields are the
// variables), and Flux's order: status.observedGeneration differing from
// metadata.generation is InProgress; then inProgress, failed, current, the first
// true wins; none true is InProgress; an evaluation error is Unknown.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	lua "github.com/yuin/gopher-lua"
)

type celExprs struct {
	Current    string `json:"current"`
	Failed     string `json:"failed"`
	InProgress string `json:"inProgress"`
}

type request struct {
	Lua      string            `json:"lua"`
	OpenLibs bool              `json:"openLibs"`
	Cel      celExprs          `json:"cel"`
	Objects  []json.RawMessage `json:"objects"`
}

type luaResult struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

type result struct {
	Lua       luaResult `json:"lua"`
	Flux      string    `json:"flux"`
	FluxError string    `json:"fluxError,omitempty"`
}

// decode reads an object as apimachinery's unstructured decoder does: whole
// numbers as int64, others as float64.
func decode(raw json.RawMessage) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	m, ok := numbers(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("an object must be a JSON object")
	}
	return m, nil
}

func numbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case []any:
		for i := range t {
			t[i] = numbers(t[i])
		}
		return t
	case map[string]any:
		for k := range t {
			t[k] = numbers(t[k])
		}
		return t
	}
	return v
}

// toLua converts a decoded object to Lua values as Argo CD does.
func toLua(l *lua.LState, v any) lua.LValue {
	switch t := v.(type) {
	case bool:
		return lua.LBool(t)
	case float64:
		return lua.LNumber(t)
	case int64:
		return lua.LNumber(t)
	case string:
		return lua.LString(t)
	case []any:
		arr := l.CreateTable(len(t), 0)
		for _, item := range t {
			arr.Append(toLua(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(t))
		for k, item := range t {
			tbl.RawSetH(lua.LString(k), toLua(l, item))
		}
		return tbl
	}
	return lua.LNil
}

var argoStatuses = map[string]bool{"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true}

func runLua(script string, openLibs bool, obj map[string]any) luaResult {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	if !openLibs {
		// Argo CD's set for a customization; its os is reduced to time functions,
		// which the script does not use, so none is opened here.
		for _, lib := range []struct {
			name string
			open lua.LGFunction
		}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
			if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
				return luaResult{Error: err.Error()}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return luaResult{Error: err.Error()}
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return luaResult{Error: fmt.Sprintf("the script returned %s, not a table", l.Get(-1).Type())}
	}
	status := lua.LVAsString(ret.RawGetString("status"))
	if !argoStatuses[status] {
		return luaResult{Status: "Unknown", Message: "Lua returned an invalid health status"}
	}
	return luaResult{Status: status, Message: lua.LVAsString(ret.RawGetString("message"))}
}

func celProgram(expr string) (cel.Program, error) {
	if expr == "" {
		return nil, nil
	}
	env, err := cel.NewEnv(
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Encoders(),
	)
	if err != nil {
		return nil, err
	}
	ast, issues := env.Parse(expr)
	if issues != nil && issues.Err() != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, issues.Err())
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(100))
}

func runFlux(progs [3]cel.Program, obj map[string]any) (string, string) {
	if st, ok := obj["status"].(map[string]any); ok {
		if og, ok := st["observedGeneration"].(int64); ok {
			md, _ := obj["metadata"].(map[string]any)
			if g, ok := md["generation"].(int64); ok && g != og {
				return "InProgress", ""
			}
		}
	}
	for i, name := range []string{"InProgress", "Failed", "Current"} {
		if progs[i] == nil {
			continue
		}
		val, _, err := progs[i].ContextEval(context.Background(), obj)
		if err != nil {
			return "Unknown", err.Error()
		}
		b, ok := val.(types.Bool)
		if !ok {
			return "Unknown", fmt.Sprintf("%s expression is not boolean", name)
		}
		if b {
			return name, ""
		}
	}
	return "InProgress", ""
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintf(os.Stderr, "gitops-eval: reading the request: %v\n", err)
		os.Exit(2)
	}
	if req.Cel.Current == "" {
		fmt.Fprintln(os.Stderr, "gitops-eval: cel.current is required (as in Flux)")
		os.Exit(2)
	}
	var progs [3]cel.Program
	for i, e := range []string{req.Cel.InProgress, req.Cel.Failed, req.Cel.Current} {
		p, err := celProgram(e)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gitops-eval: %v\n", err)
			os.Exit(2)
		}
		progs[i] = p
	}
	out := make([]result, 0, len(req.Objects))
	for _, raw := range req.Objects {
		obj, err := decode(raw)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gitops-eval: %v\n", err)
			os.Exit(2)
		}
		// Each evaluator gets its own copy, as each tool reads the object afresh.
		again, _ := decode(raw)
		r := result{Lua: runLua(req.Lua, req.OpenLibs, obj)}
		r.Flux, r.FluxError = runFlux(progs, again)
		out = append(out, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "gitops-eval: %v\n", err)
		os.Exit(1)
	}
}
