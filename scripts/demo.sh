#!/usr/bin/env bash
# The README's first command. Sets everything up, starts flex-simulator with a demo data set, runs
# the project's main job (`meltano run tap-hpe-flex target-duckdb`) into output/flex_demo.duckdb,
# prints a summary, changes some data through the simulator's admin API, runs again incrementally,
# shows how small the second run is, and builds the dbt marts. Safe to rerun: each run starts a
# fresh simulator, a fresh DuckDB file and a full refresh.
#
# It runs in Meltano's `demo` environment: its own state ID (demo:tap-hpe-flex-to-target-duckdb)
# and DuckDB file, so nothing it leaves behind changes what a later `dev` or `prod` run reads. The
# simulator's URL and credentials are passed as process environment variables, which Meltano
# ranks above `.env`: credentials stored there for GreenLake are never sent to the simulator.
#
# Knobs (environment): DEMO_ORDERS (1000), DEMO_DEVICES (5000), DEMO_SEED (42), DEMO_RATE_LIMIT
# (requests per minute per endpoint, default 600). GreenLake allows 100; the demo raises it because
# the simulator, like the documented API, cannot filter or sort on updatedAt, so the second run
# re-reads every page (keeping only changed records) and, at 100, would hit a 429 and wait for the
# rest of the minute. DEMO_RATE_LIMIT=100 shows exactly that. DEMO_SIM_ARGS adds simulator flags,
# e.g. DEMO_SIM_ARGS=--updated-filter (the server accepts `updatedAt ge ...`, as sibling GreenLake
# APIs do): the tap then picks the filter strategy and run 2 reads only the changed records.
# DEMO_TENANTS=N (default 0) makes the demo client a managed service provider with N tenant
# workspaces, syncs them all (tenant_workspace_ids ["*"]) and prints the marts per tenant.
# DEMO_DBT=0 skips the dbt step (the load and its comparison only; about 12 s less).
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS="${DEMO_ORDERS:-1000}"
DEVICES="${DEMO_DEVICES:-5000}"
SEED="${DEMO_SEED:-42}"
RATE_LIMIT="${DEMO_RATE_LIMIT:-600}"
TENANTS="${DEMO_TENANTS:-0}"
WORKSPACE_ID="0f3a9c1e5b7d4e2f8a6c0b9d1e3f5a7c"
OUT=output
DB="$OUT/flex_demo.duckdb"
DEMO_START=$SECONDS

step() { printf '\n== %s\n' "$*"; }
fail_with_log() { # $1: what failed, $2: its log (plain or Meltano JSON lines)
  echo "FAILED: $1 (last lines of $2):" >&2
  python3 -c 'import json, sys
for line in open(sys.argv[1], errors="replace").read().splitlines()[-40:]:
    try:
        print(json.loads(line).get("event", line))
    except (ValueError, AttributeError):
        print(line)' "$2" >&2 || tail -n 40 "$2" >&2
  exit 1
}

step "Setting up .venv and .venv-meltano (scripts/setup.sh; minutes the first time)"
mkdir -p "$OUT"
SETUP_DONE=0
trap '[ "$SETUP_DONE" = 1 ] || fail_with_log "scripts/setup.sh" "$OUT/demo-setup.log"' EXIT
# shellcheck source=scripts/setup.sh
{ source scripts/setup.sh; } >"$OUT/demo-setup.log" 2>&1
SETUP_DONE=1
trap - EXIT
echo "ready in $((SECONDS - DEMO_START)) s (log $OUT/demo-setup.log)"
PY=.venv/bin/python

step "meltano install (plugins are defined in meltano.yml: no Meltano Hub access needed)"
# Skipped while the plugins' definitions are those of the last successful install.
INSTALL_STAMP="$(cksum <meltano.yml)"
INSTALL_START=$SECONDS
if [ "$(cat .meltano/.demo-install-stamp 2>/dev/null)" = "$INSTALL_STAMP" ]; then
  echo "plugins are installed for this meltano.yml (delete .meltano/ to reinstall)"
else
  "$MELTANO_BIN" --log-format=plain install >"$OUT/demo-install.log" 2>&1 \
    || fail_with_log "meltano install" "$OUT/demo-install.log"
  grep -E "Installed [0-9]+/[0-9]+ plugins" "$OUT/demo-install.log" || true
  printf '%s\n' "$INSTALL_STAMP" >.meltano/.demo-install-stamp
  echo "installed in $((SECONDS - INSTALL_START)) s"
fi

step "Starting flex-simulator: $ORDERS orders, $DEVICES devices, seed $SEED, $TENANTS tenants"
echo "rate limit: $RATE_LIMIT requests/min per endpoint (GreenLake allows 100; raised so that"
echo "run 2, which re-reads every page, need not wait out a 429: DEMO_RATE_LIMIT=100 shows it)"
SIM_LOG="$OUT/demo-simulator.log"
.venv/bin/flex-simulator --host 127.0.0.1 --port 0 --orders "$ORDERS" --devices "$DEVICES" \
  --seed "$SEED" --rate-limit "$RATE_LIMIT" --workspace-id "$WORKSPACE_ID" --tenants "$TENANTS" \
  ${DEMO_SIM_ARGS:-} \
  >"$SIM_LOG" 2>&1 &
SIM_PID=$!
trap 'kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true' EXIT
SIM_URL=""
for _ in $(seq 1 150); do
  SIM_URL="$(head -n 1 "$SIM_LOG" | grep -oE 'http://[0-9.]+:[0-9]+' || true)"
  [ -n "$SIM_URL" ] && break
  kill -0 "$SIM_PID" 2>/dev/null || fail_with_log "flex-simulator exited" "$SIM_LOG"
  sleep 0.2
done
[ -n "$SIM_URL" ] || fail_with_log "flex-simulator printed no URL within 30 s" "$SIM_LOG"
echo "simulator at $SIM_URL (pid $SIM_PID, log $SIM_LOG)"

# The simulator's free port and its demo client, as process environment variables: Meltano
# ranks them above `.env` and meltano.yml, so whatever a user stored for GreenLake stays unused.
export MELTANO_ENVIRONMENT=demo
export TAP_HPE_FLEX_API_URL="$SIM_URL"
export TAP_HPE_FLEX_TOKEN_URL="$SIM_URL/authorization/v2/oauth2/{workspace_id}/token"
export TAP_HPE_FLEX_CLIENT_ID=demo-client TAP_HPE_FLEX_CLIENT_SECRET=demo-secret
export TAP_HPE_FLEX_WORKSPACE_ID="$WORKSPACE_ID"
export TARGET_DUCKDB_PATH="$PWD/$DB" DBT_DUCKDB_PATH="$PWD/$DB"
if [ "$TENANTS" -gt 0 ]; then
  export TAP_HPE_FLEX_TENANT_WORKSPACE_IDS='["*"]' TAP_HPE_FLEX_WORKSPACES_API_URL="$SIM_URL"
else
  export TAP_HPE_FLEX_TENANT_WORKSPACE_IDS='[]'
fi
rm -f "$DB" "$DB.wal" "$OUT"/demo-run*.log

run_job() { # $1: run number, then extra `meltano run` options
  local n="$1" log="$OUT/demo-run$1.log" start=$SECONDS
  shift
  # JSON logs keep the tap's structured METRIC points, which demo_summary.py adds up.
  "$MELTANO_BIN" --log-format=json run "$@" tap-hpe-flex target-duckdb >"$log" 2>&1 \
    || fail_with_log "meltano run (run $n)" "$log"
  echo "run $n finished in $((SECONDS - start)) s (log $log)"
}

step "Run 1: meltano run --full-refresh tap-hpe-flex target-duckdb -> $DB"
run_job 1 --full-refresh
"$PY" scripts/demo_summary.py summary "$DB"
"$PY" scripts/demo_summary.py watermark "$DB" >"$OUT/demo-run1.watermark.json"

step "Run 1b: meltano run --full-refresh tap-hpe-flex-full-table target-duckdb (a complete pass: its keys go into the full-table job's state, docs/deletions.md)"
"$MELTANO_BIN" --log-format=json run --full-refresh tap-hpe-flex-full-table target-duckdb \
  >"$OUT/demo-run1b.log" 2>&1 || fail_with_log "meltano run (run 1b, full table)" "$OUT/demo-run1b.log"
PARTNER="$("$PY" -c 'import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); print(con.sql("SELECT resellerName FROM tap_hpe_flex.orders WHERE resellerName IS NOT NULL GROUP BY 1 ORDER BY count(*), 1 LIMIT 1").fetchone()[0])' "$DB")"

step "Changing data through the admin API: update 25 devices and 10 orders, insert 3 orders, delete 5 devices and every order of $PARTNER"
OPS="$("$PY" -c 'import json, sys; p = sys.argv[1]; print(json.dumps({"ops": [{"op": "update", "resource": "devices", "count": 25}, {"op": "update", "resource": "orders", "count": 10}, {"op": "insert", "resource": "orders", "count": 3}, {"op": "delete", "resource": "devices", "count": 5}] + [{"op": "delete", "resource": "orders", "where": {r: p}} for r in ("partnerName", "resellerName", "distributorName")]}))' "$PARTNER")"
"$PY" scripts/demo_summary.py mutate "$SIM_URL" "$OPS" >/dev/null
echo "done"

step "Run 2: meltano run tap-hpe-flex target-duckdb (incremental, from the stored state)"
run_job 2
"$PY" scripts/demo_summary.py increment "$DB" "$OUT/demo-run1.watermark.json" \
  "$OUT/demo-run1.log" "$OUT/demo-run2.log"

step "Run 3: meltano run tap-hpe-flex-full-table target-duckdb (a complete pass sees the deletions; incremental runs cannot)"
"$MELTANO_BIN" --log-format=json run tap-hpe-flex-full-table target-duckdb >"$OUT/demo-run3.log" 2>&1 \
  || fail_with_log "meltano run (run 3, full table)" "$OUT/demo-run3.log"
grep -oE '[a-z_]+: [0-9]+ record\(s\) vanished since the last complete pass' "$OUT/demo-run3.log" || true

if [ "${DEMO_DBT:-1}" = 1 ]; then
  step "dbt: meltano run dbt-duckdb:run dbt-duckdb:test (staging models and marts in transform/)"
  DBT_START=$SECONDS
  "$MELTANO_BIN" --log-format=plain run dbt-duckdb:run dbt-duckdb:test >"$OUT/demo-dbt.log" 2>&1 \
    || fail_with_log "meltano run dbt-duckdb:run dbt-duckdb:test" "$OUT/demo-dbt.log"
  grep -hoE "(Completed successfully|Done\. PASS=[0-9]+ WARN=[0-9]+ ERROR=[0-9]+[^\"]*)" \
    "$OUT/demo-dbt.log" | sort | uniq -c || true
  echo "dbt finished in $((SECONDS - DBT_START)) s (log $OUT/demo-dbt.log)"
  "$PY" scripts/demo_summary.py marts "$DB"
  "$PY" -c 'import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); print("devices in flex_marts.fleet_devices:", con.sql("SELECT sum(device_count) FROM flex_marts.fleet_devices").fetchone()[0]); print(f"orders of {sys.argv[2]} in flex_marts.partner_summary:", con.execute("SELECT coalesce(sum(order_count), 0) FROM flex_marts.partner_summary WHERE partner_name = ?", [sys.argv[2]]).fetchone()[0])' "$DB" "$PARTNER"
  if [ "$TENANTS" -gt 0 ]; then "$PY" scripts/demo_summary.py tenants "$DB"; fi
fi

step "Done in $((SECONDS - DEMO_START)) s. Explore the data (the connection must stay open while .sql() runs):"
echo ".venv/bin/python -c \"import duckdb; con = duckdb.connect('$DB', read_only=True); con.sql('SELECT model, count(*) FROM tap_hpe_flex.devices GROUP BY 1 ORDER BY 2 DESC').show()\""
