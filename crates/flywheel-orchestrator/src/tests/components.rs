//! Components the harness runs: small, deterministic, and each with one
//! behaviour a scenario needs (write, transform, fail, fail then succeed,
//! wait for cancellation, publish). Each counts how often its executor was
//! called, by step, so a test can tell a cache hit or a kept step from a
//! re-run.

use flywheel_core::{
    ArtifactType, Component, ComponentRegistry, ComponentSpec, ExecContext, ExecError, ParamSpec, ParamType, PortSpec,
    Role,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the `sleepy` component writes before it waits: never stored when
/// the step is cancelled or times out.
pub const HALF_DONE: &str = "half-done\n";

const OUT: &[PortSpec] = &[PortSpec { name: "out", ty: ArtifactType::File, doc: "", optional: false }];
const IN: &[PortSpec] = &[PortSpec { name: "in", ty: ArtifactType::File, doc: "", optional: false }];
const IN_OPTIONAL: &[PortSpec] = &[PortSpec { name: "in", ty: ArtifactType::File, doc: "", optional: true }];

const fn spec(name: &'static str, params: &'static [ParamSpec], inputs: &'static [PortSpec]) -> ComponentSpec {
    ComponentSpec { name, version: "1", description: "", params, inputs, outputs: OUT, dynamic_ports: false }
}

/// `write`: writes its `text` parameter.
static WRITE: ComponentSpec =
    spec("write", &[ParamSpec { name: "text", ty: ParamType::String, required: true, doc: "" }], &[]);
/// `upper`: writes its input in capitals.
static UPPER: ComponentSpec = spec("upper", &[], IN);
/// `broken`: fails with its `message`.
static BROKEN: ComponentSpec =
    spec("broken", &[ParamSpec { name: "message", ty: ParamType::String, required: true, doc: "" }], IN_OPTIONAL);
/// `flaky`: fails its first `failures` calls in a step, then writes `ok`.
static FLAKY: ComponentSpec =
    spec("flaky", &[ParamSpec { name: "failures", ty: ParamType::Int, required: true, doc: "" }], IN_OPTIONAL);
/// `sleepy`: writes [`HALF_DONE`], then waits until it is cancelled (and,
/// while the test holds it, until released: see [`Parts::hold`]).
static SLEEPY: ComponentSpec = spec("sleepy", &[], IN_OPTIONAL);
/// `publish`: a publisher; writes a receipt naming what it read.
static PUBLISH: ComponentSpec = spec("publish", &[], IN);

/// One test component: its spec, its behaviour, its calls by step.
pub struct TestComponent {
    spec: &'static ComponentSpec,
    calls: Mutex<HashMap<String, u32>>,
    /// Set while the test holds the component (see [`Parts::hold`]).
    held: AtomicBool,
}

impl TestComponent {
    fn new(spec: &'static ComponentSpec) -> Arc<Self> {
        Arc::new(Self { spec, calls: Mutex::default(), held: AtomicBool::new(false) })
    }

    /// Counts a call of `step`; how many there were, this one included.
    fn count(&self, step: &str) -> u32 {
        let mut calls = self.calls.lock().unwrap();
        let n = calls.entry(step.to_string()).or_default();
        *n += 1;
        *n
    }
}

fn write_out(ctx: &ExecContext, text: &str) -> Result<(), ExecError> {
    std::fs::write(ctx.output_path("out"), text).map_err(|e| ExecError::io("writing out", e))
}

fn read_in(ctx: &ExecContext) -> Result<String, ExecError> {
    std::fs::read_to_string(&ctx.input("in")?.path).map_err(|e| ExecError::io("reading in", e))
}

fn param<'a>(ctx: &'a ExecContext, name: &str) -> &'a serde_json::Value {
    ctx.params.get(name).unwrap_or(&serde_json::Value::Null)
}

/// Waits for the step's token, then for the test to release it; a step
/// never cancelled or released fails after a while instead of hanging the
/// test.
fn wait_for_cancel(ctx: &ExecContext, held: &AtomicBool) -> Result<(), ExecError> {
    let give_up = Instant::now() + Duration::from_secs(30);
    while Instant::now() < give_up {
        if ctx.cancel.is_cancelled() && !held.load(Ordering::SeqCst) {
            return Err(ExecError::Cancelled);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(ExecError::failed("never cancelled"))
}

impl Component for TestComponent {
    fn spec(&self) -> &'static ComponentSpec {
        self.spec
    }

    fn role(&self) -> Role {
        if self.spec.name == "publish" { Role::Publisher } else { Role::Ordinary }
    }

    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError> {
        let call = self.count(&ctx.step);
        match self.spec.name {
            "write" => write_out(ctx, param(ctx, "text").as_str().unwrap_or_default()),
            "upper" => write_out(ctx, &read_in(ctx)?.to_uppercase()),
            "broken" => Err(ExecError::failed(param(ctx, "message").as_str().unwrap_or_default())),
            "flaky" if i64::from(call) <= param(ctx, "failures").as_i64().unwrap_or(0) => {
                Err(ExecError::failed(format!("flaky call {call}")))
            }
            "flaky" => write_out(ctx, "ok\n"),
            "sleepy" => {
                write_out(ctx, HALF_DONE)?;
                wait_for_cancel(ctx, &self.held)
            }
            "publish" => write_out(ctx, &format!("published {}\n", ctx.input("in")?.digest)),
            other => Err(ExecError::failed(format!("no test component `{other}`"))),
        }
    }
}

/// Every test component, kept so that a test can count their calls.
pub struct Parts {
    all: Vec<Arc<TestComponent>>,
}

impl Parts {
    pub fn new() -> Self {
        Self { all: [&WRITE, &UPPER, &BROKEN, &FLAKY, &SLEEPY, &PUBLISH].into_iter().map(TestComponent::new).collect() }
    }

    fn named(&self, component: &str) -> &TestComponent {
        self.all.iter().find(|c| c.spec.name == component).expect("a test component")
    }

    /// Keeps `component` from returning after its cancellation until
    /// [`Parts::release`]: the test decides what the scheduler sees first.
    pub fn hold(&self, component: &str) {
        self.named(component).held.store(true, Ordering::SeqCst);
    }

    pub fn release(&self, component: &str) {
        self.named(component).held.store(false, Ordering::SeqCst);
    }

    pub fn registry(&self) -> ComponentRegistry {
        ComponentRegistry::new(self.all.iter().map(|c| c.clone() as Arc<dyn Component>).collect())
    }

    /// How often the executor ran for `step` (every attempt counts).
    pub fn calls(&self, step: &str) -> u32 {
        self.all.iter().map(|c| c.calls.lock().unwrap().get(step).copied().unwrap_or(0)).sum()
    }
}
