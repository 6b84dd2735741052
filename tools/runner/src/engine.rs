//! The waPC engine: wasmtime with only what a Kubewarden policy needs (the Cranelift compiler,
//! the runtime and the compilation cache), instead of wasmtime-provider, whose wasmtime brings
//! the component model, WASI preview 2, async and GC. Building those took about two of the six
//! minutes a newcomer's first `make demo` spent compiling the runner.
//!
//! The guest sees waPC's host functions and the part of WASI preview 1 that Rust policies
//! use: `fd_write` to the inherited stdout and stderr, no arguments and an empty environment
//! (as wasmtime-provider's context gives them), `clock_time_get`, `random_get`, `sched_yield`,
//! `proc_exit`. Any other import links to a function that traps when called: a module that
//! imports more than it uses still runs.
//!
//! On an engine with fuel enabled (`Config::consume_fuel`, see `evaluate::Policy::load_counting`)
//! every guest call's instruction count is kept in an `InstructionCounter`: wasmtime 48's default
//! fuel, one unit per WebAssembly operator executed (`nop`, `drop`, `block`, `loop`, `else`,
//! `end`, `return` and `unreachable` are free), plus one per byte `memory.copy`, `memory.fill` or
//! `memory.init` moves. Host functions cost the guest one `call` each; their own work is not
//! counted. Instantiation and the start functions are not counted either: only `__guest_call`.
//! When counting, `random_get` answers zeros, so that hash maps seeded from it (and so the count)
//! are the same on every run.

use std::fmt;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow};
use wapc::{ModuleState, WebAssemblyEngineProvider, wapc_functions};
use wasmtime::{
    AsContext, AsContextMut, Caller, Engine, Extern, InstancePre, IntoFunc, Linker, Memory, Module,
    Store, TypedFunc,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// WASI's `errno` values the guest can receive.
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_INVAL: i32 = 28;
const ERRNO_IO: i32 = 29;

/// The fuel a store is given: wasmtime keeps fuel as an `i64`, so this is the most it holds,
/// more than any evaluation can spend (about 10^18 instructions).
const FUEL_TANK: u64 = i64::MAX as u64;

/// The instructions (fuel units) the latest guest call spent, on any instance of one module,
/// and what it had spent at each of its host calls: where the instructions go, phase by phase.
#[derive(Clone, Default)]
pub struct InstructionCounter {
    spent: Arc<AtomicU64>,
    host_calls: Arc<Mutex<Vec<(String, u64)>>>,
}

impl InstructionCounter {
    /// The count of the latest `__guest_call`; 0 before any.
    pub fn last_call(&self) -> u64 {
        self.spent.load(Ordering::SeqCst)
    }

    /// The host calls (`namespace/operation`) of the latest `__guest_call`, each with the
    /// instructions spent before it.
    pub fn last_call_host_calls(&self) -> Vec<(String, u64)> {
        self.host_calls
            .lock()
            .map(|calls| calls.clone())
            .unwrap_or_default()
    }

    fn start_call(&self) {
        if let Ok(mut calls) = self.host_calls.lock() {
            calls.clear();
        }
    }

    fn record_host_call(&self, call: String, spent: u64) {
        if let Ok(mut calls) = self.host_calls.lock() {
            calls.push((call, spent));
        }
    }
}

/// A module compiled and linked once; each request gets a fresh instance from it.
#[derive(Clone)]
pub struct CompiledModule {
    engine: Engine,
    pre: InstancePre<GuestState>,
    /// Set when `engine` consumes fuel: where each guest call's count goes.
    counter: Option<InstructionCounter>,
}

impl CompiledModule {
    /// Compiles `bytes` on `engine`; `counter` must be given exactly when the engine consumes
    /// fuel (a store of such an engine starts empty, so would trap at once).
    pub fn new(engine: &Engine, bytes: &[u8], counter: Option<InstructionCounter>) -> Result<Self> {
        let module = Module::new(engine, bytes).map_err(|e| anyhow!("{e}"))?;
        let mut linker = Linker::new(engine);
        add_wapc(&mut linker)?;
        add_wasi(&mut linker)?;
        linker
            .define_unknown_imports_as_traps(&module)
            .map_err(|e| anyhow!("{e}"))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Self {
            engine: engine.clone(),
            pre,
            counter,
        })
    }

    /// An engine provider for `wapc::WapcHost`, which instantiates it in `init`.
    pub fn provider(&self) -> Result<Box<dyn WebAssemblyEngineProvider>> {
        let state = GuestState {
            host: None,
            counter: self.counter.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        if self.counter.is_some() {
            store.set_fuel(FUEL_TANK).map_err(|e| anyhow!("{e}"))?;
        }
        Ok(Box::new(Provider {
            compiled: self.clone(),
            store,
            guest_call: None,
        }))
    }
}

#[derive(Default)]
struct GuestState {
    host: Option<Arc<ModuleState>>,
    /// Set when counting instructions; then `random_get` gives zeros, so that a guest seeding
    /// its hash maps from it (Rust's `HashMap`) executes the same instructions on every run.
    counter: Option<InstructionCounter>,
}

impl GuestState {
    fn host(&self) -> wasmtime::Result<Arc<ModuleState>> {
        self.host
            .clone()
            .ok_or_else(|| wasmtime::format_err!("the waPC host is not set up yet"))
    }
}

struct Provider {
    compiled: CompiledModule,
    store: Store<GuestState>,
    guest_call: Option<TypedFunc<(i32, i32), i32>>,
}

impl WebAssemblyEngineProvider for Provider {
    fn init(&mut self, host: Arc<ModuleState>) -> Result<(), BoxError> {
        self.store.data_mut().host = Some(host);
        let instance = self.compiled.pre.instantiate(&mut self.store)?;
        for starter in wapc_functions::REQUIRED_STARTS {
            let Some(start) = instance.get_func(&mut self.store, starter) else {
                continue;
            };
            let start = start.typed::<(), ()>(&self.store)?;
            if let Err(error) = start.call(&mut self.store, ()) {
                // A WASI `main` that exits with 0 has succeeded.
                return match error.downcast_ref::<Exit>() {
                    Some(Exit(0)) => continue,
                    Some(exit) => Err(exit.to_string().into()),
                    None => Err(error.to_string().into()),
                };
            }
        }
        let guest_call = instance
            .get_typed_func::<(i32, i32), i32>(&mut self.store, wapc_functions::GUEST_CALL)
            .map_err(|_| "the module does not export __guest_call")?;
        self.guest_call = Some(guest_call);
        Ok(())
    }

    /// A trap is the guest's error, as wasmtime-provider reports it.
    fn call(&mut self, op_length: i32, msg_length: i32) -> Result<i32, BoxError> {
        let guest_call = self
            .guest_call
            .clone()
            .ok_or("the module is not initialised")?;
        if let Some(counter) = &self.compiled.counter {
            counter.start_call();
            self.store.set_fuel(FUEL_TANK)?;
        }
        let outcome = guest_call.call(&mut self.store, (op_length, msg_length));
        if let Some(counter) = &self.compiled.counter {
            let spent = FUEL_TANK.saturating_sub(self.store.get_fuel()?);
            counter.spent.store(spent, Ordering::SeqCst);
        }
        match outcome {
            Ok(result) => Ok(result),
            Err(error) => {
                self.store.data().host()?.set_guest_error(error.to_string());
                Ok(0)
            }
        }
    }

    fn replace(&mut self, _bytes: &[u8]) -> Result<(), BoxError> {
        Err("replacing a running module is not supported".into())
    }
}

/// `proc_exit`'s status, carried out of the guest as an error.
#[derive(Debug)]
struct Exit(i32);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Exited with i32 exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// WASI's realtime (0) and monotonic (1) clocks in nanoseconds; `None` for the CPU-time clocks.
fn clock_now(clock: i32) -> Option<u64> {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = match clock {
        0 => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?,
        1 => START.get_or_init(std::time::Instant::now).elapsed(),
        _ => return None,
    };
    u64::try_from(elapsed.as_nanos()).ok()
}

fn memory(caller: &mut Caller<'_, GuestState>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(wasmtime::format_err!("the module exports no memory")),
    }
}

fn read(
    caller: &Caller<'_, GuestState>,
    memory: Memory,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let start = ptr as u32 as usize;
    let end = start.saturating_add(len as u32 as usize);
    memory
        .data(caller.as_context())
        .get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| wasmtime::format_err!("out of bounds memory access"))
}

fn read_str(
    caller: &Caller<'_, GuestState>,
    memory: Memory,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<String> {
    String::from_utf8(read(caller, memory, ptr, len)?)
        .map_err(|e| wasmtime::format_err!("the guest passed a string that is not UTF-8: {e}"))
}

fn write(
    caller: &mut Caller<'_, GuestState>,
    memory: Memory,
    ptr: i32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    memory
        .write(caller.as_context_mut(), ptr as u32 as usize, bytes)
        .map_err(|e| wasmtime::format_err!("{e}"))
}

fn read_u32(caller: &Caller<'_, GuestState>, memory: Memory, ptr: u32) -> wasmtime::Result<u32> {
    let bytes = read(caller, memory, ptr as i32, 4)?;
    let bytes: [u8; 4] = bytes
        .try_into()
        .map_err(|_| wasmtime::format_err!("out of bounds memory access"))?;
    Ok(u32::from_le_bytes(bytes))
}

/// Adds one host function; wasmtime's refusal names it.
fn define<Params, Args>(
    linker: &mut Linker<GuestState>,
    module: &str,
    name: &str,
    func: impl IntoFunc<GuestState, Params, Args>,
) -> Result<()> {
    linker
        .func_wrap(module, name, func)
        .map_err(|e| anyhow!("cannot define {module}.{name}: {e}"))?;
    Ok(())
}

fn add_wapc(linker: &mut Linker<GuestState>) -> Result<()> {
    let ns = wapc::HOST_NAMESPACE;
    define(
        linker,
        ns,
        wapc_functions::GUEST_REQUEST_FN,
        |mut caller: Caller<'_, GuestState>, op_ptr: i32, ptr: i32| {
            let host = caller.data().host()?;
            let memory = memory(&mut caller)?;
            if let Some(invocation) = host.get_guest_request() {
                write(&mut caller, memory, ptr, &invocation.msg)?;
                write(&mut caller, memory, op_ptr, invocation.operation.as_bytes())?;
            }
            Ok(())
        },
    )?;
    define(
        linker,
        ns,
        wapc_functions::HOST_CONSOLE_LOG,
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| {
            let host = caller.data().host()?;
            let memory = memory(&mut caller)?;
            host.do_console_log(&read_str(&caller, memory, ptr, len)?);
            Ok(())
        },
    )?;
    define(
        linker,
        ns,
        wapc_functions::HOST_CALL,
        |mut caller: Caller<'_, GuestState>,
         binding_ptr: i32,
         binding_len: i32,
         ns_ptr: i32,
         ns_len: i32,
         op_ptr: i32,
         op_len: i32,
         ptr: i32,
         len: i32| {
            let host = caller.data().host()?;
            let memory = memory(&mut caller)?;
            let binding = read_str(&caller, memory, binding_ptr, binding_len)?;
            let namespace = read_str(&caller, memory, ns_ptr, ns_len)?;
            let operation = read_str(&caller, memory, op_ptr, op_len)?;
            let payload = read(&caller, memory, ptr, len)?;
            if let Some(counter) = &caller.data().counter {
                let spent = FUEL_TANK.saturating_sub(caller.get_fuel()?);
                counter.record_host_call(format!("{namespace}/{operation}"), spent);
            }
            Ok(host
                .do_host_call(&binding, &namespace, &operation, &payload)
                .unwrap_or(0))
        },
    )?;
    define(
        linker,
        ns,
        wapc_functions::HOST_RESPONSE_FN,
        |mut caller: Caller<'_, GuestState>, ptr: i32| {
            let host = caller.data().host()?;
            let memory = memory(&mut caller)?;
            host.with_host_response(|bytes| write(&mut caller, memory, ptr, bytes))
                .transpose()?;
            Ok(())
        },
    )?;
    define(
        linker,
        ns,
        wapc_functions::HOST_RESPONSE_LEN_FN,
        |caller: Caller<'_, GuestState>| Ok(caller.data().host()?.host_response_len() as i32),
    )?;
    define(
        linker,
        ns,
        wapc_functions::GUEST_RESPONSE_FN,
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| {
            let host = caller.data().host()?;
            let memory = memory(&mut caller)?;
            host.set_guest_response(read(&caller, memory, ptr, len)?);
            Ok(())
        },
    )?;
    define(
        linker,
        ns,
        wapc_functions::GUEST_ERROR_FN,
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| {
            let host = caller.data().host()?;
            let memory = memory(&mut caller)?;
            host.set_guest_error(read_str(&caller, memory, ptr, len)?);
            Ok(())
        },
    )?;
    define(
        linker,
        ns,
        wapc_functions::HOST_ERROR_FN,
        |mut caller: Caller<'_, GuestState>, ptr: i32| {
            let host = caller.data().host()?;
            let memory = memory(&mut caller)?;
            if let Some(error) = host.get_host_error() {
                write(&mut caller, memory, ptr, error.as_bytes())?;
            }
            Ok(())
        },
    )?;
    define(
        linker,
        ns,
        wapc_functions::HOST_ERROR_LEN_FN,
        |caller: Caller<'_, GuestState>| {
            let host = caller.data().host()?;
            Ok(host.get_host_error().map_or(0, |error| error.len()) as i32)
        },
    )?;
    Ok(())
}

/// `environ_sizes_get` and `args_sizes_get` of an empty list: no strings, no bytes.
fn no_strings(
    mut caller: Caller<'_, GuestState>,
    count_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<i32> {
    let memory = memory(&mut caller)?;
    write(&mut caller, memory, count_ptr, &0u32.to_le_bytes())?;
    write(&mut caller, memory, size_ptr, &0u32.to_le_bytes())?;
    Ok(ERRNO_SUCCESS)
}

fn add_wasi(linker: &mut Linker<GuestState>) -> Result<()> {
    let ns = "wasi_snapshot_preview1";
    define(
        linker,
        ns,
        "fd_write",
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         iovs: i32,
         iovs_len: i32,
         written_ptr: i32| {
            let memory = memory(&mut caller)?;
            // Like wasmtime-wasi: one write of the first non-empty buffer, flushed; the
            // guest's std writes the rest in further calls.
            let mut bytes = Vec::new();
            for index in 0..iovs_len.max(0) as u32 {
                let iov = (iovs as u32).checked_add(index.saturating_mul(8));
                let iov =
                    iov.ok_or_else(|| wasmtime::format_err!("out of bounds memory access"))?;
                let buf = read_u32(&caller, memory, iov)?;
                let len = read_u32(&caller, memory, iov.saturating_add(4))?;
                if len > 0 {
                    bytes = read(&caller, memory, buf as i32, len as i32)?;
                    break;
                }
            }
            let outcome = match fd {
                1 => {
                    let mut out = std::io::stdout();
                    out.write_all(&bytes).and_then(|()| out.flush())
                }
                2 => std::io::stderr().write_all(&bytes),
                _ => return Ok(ERRNO_BADF),
            };
            if outcome.is_err() {
                return Ok(ERRNO_IO);
            }
            write(
                &mut caller,
                memory,
                written_ptr,
                &(bytes.len() as u32).to_le_bytes(),
            )?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    define(linker, ns, "environ_sizes_get", no_strings)?;
    define(
        linker,
        ns,
        "environ_get",
        |_caller: Caller<'_, GuestState>, _environ: i32, _buf: i32| Ok(ERRNO_SUCCESS),
    )?;
    define(
        linker,
        ns,
        "random_get",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| {
            let memory = memory(&mut caller)?;
            // Checked before allocating: the guest's length is not trusted.
            let end = (ptr as u32 as usize).saturating_add(len as u32 as usize);
            if end > memory.data_size(&caller) {
                return Err(wasmtime::format_err!("out of bounds memory access"));
            }
            let mut bytes = vec![0; len as u32 as usize];
            let filled = if caller.data().counter.is_some() {
                Ok(())
            } else {
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut source| source.read_exact(&mut bytes))
            };
            if filled.is_err() {
                return Ok(ERRNO_IO);
            }
            write(&mut caller, memory, ptr, &bytes)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    define(linker, ns, "args_sizes_get", no_strings)?;
    define(
        linker,
        ns,
        "args_get",
        |_caller: Caller<'_, GuestState>, _argv: i32, _buf: i32| Ok(ERRNO_SUCCESS),
    )?;
    define(
        linker,
        ns,
        "clock_time_get",
        |mut caller: Caller<'_, GuestState>, clock: i32, _precision: i64, time_ptr: i32| {
            let Some(nanoseconds) = clock_now(clock) else {
                return Ok(ERRNO_INVAL);
            };
            let memory = memory(&mut caller)?;
            write(&mut caller, memory, time_ptr, &nanoseconds.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    define(
        linker,
        ns,
        "sched_yield",
        |_caller: Caller<'_, GuestState>| Ok(ERRNO_SUCCESS),
    )?;
    define(
        linker,
        ns,
        "proc_exit",
        |_caller: Caller<'_, GuestState>, status: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(Exit(status)))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wapc::WapcHost;

    fn host(wat: &str) -> Result<WapcHost, wapc::errors::Error> {
        let engine = Engine::default();
        let compiled = CompiledModule::new(&engine, &wat::parse_str(wat).unwrap(), None).unwrap();
        WapcHost::new(compiled.provider().unwrap(), None)
    }

    /// A guest whose `__guest_call` runs `body`, then answers with memory bytes 0..48.
    fn answering_memory(imports: &str, body: &str) -> String {
        format!(
            r#"(module {imports}
                 (import "wapc" "__guest_response" (func $respond (param i32 i32)))
                 (memory (export "memory") 1)
                 (data (i32.const 0) "\ff\ff\ff\ff\ff\ff\ff\ff")
                 (func (export "__guest_call") (param i32 i32) (result i32)
                   {body} (call $respond (i32.const 0) (i32.const 48)) (i32.const 1)))"#
        )
    }

    #[test]
    fn wasi_gives_an_empty_environment_a_clock_and_random_bytes() {
        let guest = host(&answering_memory(
            r#"(import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
               (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
               (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))"#,
            "(drop (call $sizes (i32.const 0) (i32.const 4))) (drop (call $clock (i32.const 0) (i64.const 0) (i32.const 8)))
             (drop (call $random (i32.const 16) (i32.const 32)))",
        ))
        .unwrap();
        let memory = guest.call("validate", b"").unwrap();
        assert_eq!(&memory[..8], &[0; 8], "no variables, no bytes of them");
        let now = u64::from_le_bytes(memory[8..16].try_into().unwrap());
        assert!(
            now > 1_700_000_000 * 1_000_000_000,
            "realtime clock in ns: {now}"
        );
        assert!(
            memory[16..48].iter().any(|&byte| byte != 0),
            "random bytes written"
        );
    }

    #[test]
    fn other_imports_load_and_trap_only_when_called() {
        let path_open = r#"(import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#;
        let unused = host(&answering_memory(path_open, "")).unwrap();
        assert!(unused.call("validate", b"").is_ok());
        let used = host(&answering_memory(
            path_open,
            "(drop (call $open (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)))",
        ))
        .unwrap();
        let error = used.call("validate", b"").unwrap_err().to_string();
        assert!(
            error.starts_with("Guest call failure: error while executing at wasm backtrace:"),
            "{error}"
        );
    }

    #[test]
    fn an_exit_with_status_0_while_starting_is_success() {
        let starting_with = |status: i32| {
            host(&format!(
                r#"(module
                     (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                     (memory (export "memory") 1)
                     (func (export "_start") (call $exit (i32.const {status})))
                     (func (export "__guest_call") (param i32 i32) (result i32) (i32.const 1)))"#
            ))
        };
        assert!(starting_with(0).is_ok());
        let error = starting_with(3).err().unwrap().to_string();
        assert!(error.contains("Exited with i32 exit status 3"), "{error}");
    }
}
