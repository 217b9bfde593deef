export { AccessLogSink } from "./access-log-sink.js";
