// The README's Node example: GetDriftReport over TLS with a bearer token (and, for mTLS, a client
// certificate). Usage: node secure_call.js ADDRESS CA_FILE TOKEN [CERT_FILE KEY_FILE]
const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [address, caFile, token, certFile, keyFile] = process.argv.slice(2);
const protoDir = path.join(__dirname, "..", "..", "proto");
const definition = protoLoader.loadSync("recsys/v1/monitor.proto", { includeDirs: [protoDir] });
const recsys = grpc.loadPackageDefinition(definition).recsys.v1;

const tls = grpc.credentials.createSsl(
  fs.readFileSync(caFile),
  keyFile ? fs.readFileSync(keyFile) : null,
  certFile ? fs.readFileSync(certFile) : null,
);
const bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
  const metadata = new grpc.Metadata();
  metadata.add("authorization", `Bearer ${token}`);
  callback(null, metadata);
});
const monitor = new recsys.MonitorService(address, grpc.credentials.combineChannelCredentials(tls, bearer));

monitor.GetDriftReport({ space: "items.content" }, (error, response) => {
  if (error) {
    console.error(`${grpc.status[error.code]}: ${error.details}`);
    process.exit(1);
  }
  console.log(JSON.stringify(response));
});
