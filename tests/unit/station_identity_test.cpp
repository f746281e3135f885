// StationIdentity: the station's key (file key store) and certificate chain;
// check() of a certificate for a key pair, storage, renewal rotation and the
// recovery of an interrupted promotion. The CA is a development PKI made at
// test time.
#include "security/station_identity.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <fstream>

#include "security/dev_pki.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace cg::security;

namespace {

class StationIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = cg::test::make_temp_dir("identity");
    pki_ = dir_ / "pki";
    ASSERT_TRUE(dev_pki_init(pki_).ok);
    other_ = dir_ / "other";
    ASSERT_TRUE(dev_pki_init(other_).ok);
    state_ = dir_ / "state";
    fs::create_directories(state_);
    store_ = open_file_key_store({state_ / "keys"});
    id_ = std::make_unique<StationIdentity>(*store_, state_);
    roots_ = load_roots(pki_ / "operator-root-ca.pem");
  }
  void TearDown() override {
    id_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  std::vector<const X509*> roots() const {
    std::vector<const X509*> r;
    for (const auto& x : roots_) r.push_back(x.get());
    return r;
  }
  // A certificate for `label` issued by the CA of `pki` with the given subject.
  CertChain issue(std::string_view label, const fs::path& pki, const CsrSubject& subj = {"SN-1", "Op"},
                  int days = 30) {
    const auto csr = make_csr_pem(*store_, label, subj);
    const auto r = dev_pki_sign_csr(csr, pki / "operator-root-ca.pem", pki / "operator-root-ca.key", days);
    EXPECT_TRUE(r.ok) << r.error;
    std::string err;
    auto chain = parse_pem_chain(r.certificate_pem, 5, err);
    EXPECT_EQ(err, "");
    return chain;
  }
  std::string check(const CertChain& c, std::string_view label = kStationKeyLabel) {
    const auto r = id_->check(c, label, "SN-1", "Op", roots());
    return r ? std::string() : r.error().message;
  }

  fs::path dir_, pki_, other_, state_;
  std::unique_ptr<KeyStore> store_;
  std::unique_ptr<StationIdentity> id_;
  CertChain roots_;
};

TEST_F(StationIdentityTest, ChecksChainKeyAndSubjectBeforeStoring) {
  store_->generate_key(kStationKeyLabel);
  auto good = issue(kStationKeyLabel, pki_);
  EXPECT_EQ(check(good), "");
  // Another CA, another subject, another key, no key at all.
  EXPECT_NE(check(issue(kStationKeyLabel, other_)), "");
  EXPECT_NE(check(issue(kStationKeyLabel, pki_, {"SN-2", "Op"})).find("CN 'SN-2' is not the serial number"), std::string::npos);
  EXPECT_NE(check(issue(kStationKeyLabel, pki_, {"SN-1", "Other"})).find("O 'Other' is not the organization"),
            std::string::npos);
  store_->generate_key("elsewhere");
  EXPECT_NE(check(issue("elsewhere", pki_)).find("not for the key pair"), std::string::npos);
  EXPECT_NE(check(good, kStationNextKeyLabel).find("no key pair"), std::string::npos);
  EXPECT_EQ(check(CertChain{}), "empty certificate chain");
  // A CA certificate as leaf: the operator root itself.
  CertChain ca;
  ca.push_back(share(roots_.front().get()));
  EXPECT_NE(check(ca), "");

  EXPECT_FALSE(id_->has_certificate(kStationKeyLabel));
  id_->store_chain(kStationKeyLabel, good);
  EXPECT_TRUE(id_->has_certificate(kStationKeyLabel));
  auto loaded = id_->load(kStationKeyLabel);
  ASSERT_EQ(loaded->chain.size(), 1u);
  EXPECT_EQ(X509_cmp(loaded->chain.front().get(), good.front().get()), 0);
  const auto s = id_->summary(kStationKeyLabel);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->common_name, "SN-1");
  EXPECT_EQ(s->organization, "Op");
  EXPECT_EQ(s->sha256_fingerprint.size(), 32u * 3 - 1);
}

TEST_F(StationIdentityTest, LoadRefusesAChainThatDoesNotCertifyTheKey) {
  store_->generate_key(kStationKeyLabel);
  store_->generate_key("elsewhere");
  id_->store_chain(kStationKeyLabel, issue("elsewhere", pki_));
  try {
    (void)id_->load(kStationKeyLabel);
    FAIL() << "loaded a certificate for another key";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not certify"), std::string::npos) << e.what();
  }
}

TEST_F(StationIdentityTest, RenewalPromotesOrDiscardsTheCandidate) {
  store_->generate_key(kStationKeyLabel);
  id_->store_chain(kStationKeyLabel, issue(kStationKeyLabel, pki_));
  const auto old_spki = store_->public_key_der(kStationKeyLabel);

  // Discard: the old identity stays.
  id_->begin_renewal();
  EXPECT_TRUE(id_->renewal_key_exists());
  id_->store_chain(kStationNextKeyLabel, issue(kStationNextKeyLabel, pki_));
  EXPECT_TRUE(id_->has_candidate());
  id_->discard_candidate();
  EXPECT_FALSE(id_->has_candidate());
  EXPECT_FALSE(id_->renewal_key_exists());
  EXPECT_EQ(store_->public_key_der(kStationKeyLabel), old_spki);

  // Promote: the candidate becomes the identity, the old key is gone.
  id_->begin_renewal();
  auto next = issue(kStationNextKeyLabel, pki_);
  EXPECT_EQ(check(next, kStationNextKeyLabel), "");
  id_->store_chain(kStationNextKeyLabel, next);
  const auto new_spki = store_->public_key_der(kStationNextKeyLabel);
  id_->promote();
  EXPECT_FALSE(id_->has_candidate());
  EXPECT_FALSE(id_->renewal_key_exists());
  EXPECT_EQ(store_->public_key_der(kStationKeyLabel), new_spki);
  EXPECT_EQ(store_->list_keys(), std::vector<std::string>{kStationKeyLabel});
  EXPECT_NO_THROW((void)id_->load(kStationKeyLabel));
}

TEST_F(StationIdentityTest, RecoverCompletesAPromotionInterruptedAfterTheKeyMoved) {
  store_->generate_key(kStationKeyLabel);
  id_->store_chain(kStationKeyLabel, issue(kStationKeyLabel, pki_));
  id_->begin_renewal();
  id_->store_chain(kStationNextKeyLabel, issue(kStationNextKeyLabel, pki_));
  // The crash: the key was relabelled, the file not yet renamed.
  store_->promote_key(kStationNextKeyLabel, kStationKeyLabel);
  EXPECT_THROW((void)id_->load(kStationKeyLabel), std::runtime_error);  // old file, new key
  StationIdentity after_restart(*store_, state_);
  after_restart.recover();
  EXPECT_FALSE(after_restart.has_candidate());
  EXPECT_NO_THROW((void)after_restart.load(kStationKeyLabel));
}

TEST_F(StationIdentityTest, RecoverLeavesAPendingCandidateAndDropsAnOrphanedOne) {
  store_->generate_key(kStationKeyLabel);
  id_->store_chain(kStationKeyLabel, issue(kStationKeyLabel, pki_));
  id_->begin_renewal();
  id_->store_chain(kStationNextKeyLabel, issue(kStationNextKeyLabel, pki_));
  id_->recover();  // nothing interrupted: the candidate waits for its first connection
  EXPECT_TRUE(id_->has_candidate());
  // Its key disappeared (not by a promotion): the file is useless and goes.
  store_->delete_key(kStationNextKeyLabel);
  id_->recover();
  EXPECT_FALSE(id_->has_candidate());
  EXPECT_NO_THROW((void)id_->load(kStationKeyLabel));
}

TEST_F(StationIdentityTest, TheRenewalRequestIsKeptUntilTheCandidateGoes) {
  store_->generate_key(kStationKeyLabel);
  id_->store_chain(kStationKeyLabel, issue(kStationKeyLabel, pki_));
  const fs::path csr_file = state_ / "identity" / "station.next.csr";
  EXPECT_FALSE(id_->load_csr());
  id_->begin_renewal();
  const std::string csr = make_csr_pem(*store_, kStationNextKeyLabel, {"SN-1", "Op"});
  id_->store_csr(csr);
  EXPECT_EQ(id_->load_csr(), csr);
  EXPECT_EQ(StationIdentity(*store_, state_).load_csr(), csr) << "after a restart";
  // Not a request, or too big: nothing.
  cg::test::write_file(csr_file, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
  EXPECT_FALSE(id_->load_csr());
  cg::test::write_file(csr_file, std::string(17 * 1024, 'x'));
  EXPECT_FALSE(id_->load_csr());
  EXPECT_THROW(id_->store_csr(std::string(17 * 1024, 'x')), std::runtime_error);
  // Gone with the candidate, with a promotion, and when its key is gone.
  id_->store_csr(csr);
  id_->discard_candidate();
  EXPECT_FALSE(fs::exists(csr_file));
  id_->begin_renewal();
  id_->store_csr(make_csr_pem(*store_, kStationNextKeyLabel, {"SN-1", "Op"}));
  id_->store_chain(kStationNextKeyLabel, issue(kStationNextKeyLabel, pki_));
  id_->promote();
  EXPECT_FALSE(fs::exists(csr_file));
  id_->begin_renewal();
  id_->store_csr(make_csr_pem(*store_, kStationNextKeyLabel, {"SN-1", "Op"}));
  store_->delete_key(kStationNextKeyLabel);
  id_->recover();
  EXPECT_FALSE(fs::exists(csr_file));
}

TEST_F(StationIdentityTest, ClientIdentityGoesIntoATlsContext) {
  store_->generate_key(kStationKeyLabel);
  id_->store_chain(kStationKeyLabel, issue(kStationKeyLabel, pki_));
  auto id = id_->load(kStationKeyLabel);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ASSERT_NE(ctx, nullptr);
  EXPECT_TRUE(use_client_identity(ctx, *id).ok());
  SSL_CTX_free(ctx);
  // A chain with another key's certificate does not go in.
  store_->generate_key("elsewhere");
  TlsClientIdentity wrong;
  wrong.key = store_->private_key(kStationKeyLabel);
  wrong.chain = issue("elsewhere", pki_);
  ctx = SSL_CTX_new(TLS_client_method());
  EXPECT_EQ(use_client_identity(ctx, wrong).error().message, "the station key does not match the station certificate");
  SSL_CTX_free(ctx);
  EXPECT_EQ(use_client_identity(ctx = SSL_CTX_new(TLS_client_method()), TlsClientIdentity{}).error().message,
            "no station certificate or key");
  SSL_CTX_free(ctx);
}

TEST(DevPkiSignCsr, RefusesBadRequestsAndMismatchedCaFiles) {
  const auto dir = cg::test::make_temp_dir("devsign");
  ASSERT_TRUE(dev_pki_init(dir / "pki").ok);
  const auto ca = dir / "pki" / "operator-root-ca.pem";
  const auto key = dir / "pki" / "operator-root-ca.key";
  EXPECT_FALSE(dev_pki_sign_csr("not a request", ca, key).ok);
  auto store = open_file_key_store({dir / "keys"});
  store->generate_key("k");
  std::string csr = make_csr_pem(*store, "k", {"SN", "O"});
  // A flipped byte in the base64 body: the signature no longer verifies (or it no longer parses).
  std::string bad = csr;
  bad[bad.size() / 2] = bad[bad.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(dev_pki_sign_csr(bad, ca, key).ok);
  // The key of another CA.
  EXPECT_FALSE(dev_pki_sign_csr(csr, ca, dir / "pki" / "csms-root-ca.key").ok);
  EXPECT_FALSE(dev_pki_sign_csr(csr, ca, key, 0).ok);
  const auto ok = dev_pki_sign_csr(csr, ca, key, 10);
  ASSERT_TRUE(ok.ok) << ok.error;
  std::string err;
  auto cert = parse_pem_certificate(ok.certificate_pem, err);
  ASSERT_TRUE(cert) << err;
  EXPECT_EQ(subject_attribute(cert.get(), NID_commonName), "SN");
  EXPECT_FALSE(is_ca(cert.get()));
  EXPECT_TRUE(public_key_matches(cert.get(), store->public_key_der("k")));
  store.reset();
  fs::remove_all(dir);
}

}  // namespace
