// DoRA- and IA3-adapted Linear layers in fp64: every adapter gradient and the input gradient against finite
// differences, with and without adapter dropout, and each forward against its formula.
//
// DoRA treats the row norms n of W + s B A as a constant for the gradient (the DoRA paper's section 4.3, as PEFT):
// the gradients of A and B are checked against finite differences of the formula with n held at its value, those of
// the magnitude and the input (on which n does not depend) against finite differences of the layer itself.
#include <polyalpaca/polyalpaca.hpp>

#include "support/gradcheck.hpp"

namespace pa = polyalpaca;

namespace {

constexpr int in = 6, out = 5;

template <class Adapter, class Site>
struct Fixture {
    using Layer = pa::Linear<pa::CpuEigen, double, pa::LinearSpec{.in = in, .out = out, .bias = true}, Site, Adapter>;
    pa::cpu::Context ctx;
    Layer layer;
    pa::ParameterStore<pa::CpuEigen, double> store;
    pa::Matrix<double> x = pa::testing::random_matrix<double>(4, in, 1);
    pa::Matrix<double> w = pa::testing::random_matrix<double>(4, out, 2);
    bool training;

    Fixture(double dropout, bool train) : layer("proj", 0.5, dropout), training(train) {
        std::vector<pa::Parameter<double>*> params;
        layer.visit_parameters([&](pa::Parameter<double>& p) { params.push_back(&p); });
        store.bind(params);
        store.initialise(ctx, 3);
        pa::Rng rng(4);
        for (auto* p : store.parameters())  // LoRA's B starts at zero and IA3's scales at one: move every value
            for (pa::Index i = 0; i < p->size(); ++i) p->value[i] += 0.3 * rng.normal();
    }
    pa::Matrix<double> forward() {
        pa::Rng rng(99);  // the same dropout mask every time
        return layer.forward(ctx, pa::view(std::as_const(x)), pa::Mode{training, &rng}).map();
    }
    double loss() { return (forward().array() * w.array()).sum(); }
    void backward(pa::Matrix<double>& dx) {
        forward();
        dx = pa::Matrix<double>::Zero(4, in);
        store.zero_grads(ctx);
        layer.backward(ctx, pa::view(std::as_const(w)), pa::view(dx));
    }
    pa::Matrix<double> weight() { return layer.weight().values().map(); }
    Eigen::RowVectorXd bias() { return layer.bias().values().map(); }
};

template <class F>
void check_parameter(pa::Parameter<double>& p, F&& loss) {
    std::vector<double> analytic(p.grad, p.grad + p.size());
    pa::testing::check_gradient(p.name.c_str(), analytic, loss, {p.value, std::size_t(p.size())}, 1e-8);
}

using Dora = pa::DoRA<3, 12, pa::site::Qkv>;  // scale 4
using DoraFixture = Fixture<Dora, pa::site::Qkv>;

/// DoRA's formula with the norms n fixed: y = x W^T + b + (g - 1) (xd W^T) + g s xd A^T B^T, g = m / n.
pa::Matrix<double> dora_formula(DoraFixture& f, Eigen::RowVectorXd const& n, pa::Matrix<double> const& xd) {
    auto& branch = f.layer.branch();
    pa::Matrix<double> const W = f.weight();
    auto const A = branch.a().values().map();
    auto const B = branch.b().values().map();
    Eigen::RowVectorXd const g = branch.magnitude().values().map().array() / n.array();
    pa::Matrix<double> const h = xd * W.transpose();
    pa::Matrix<double> const low = 4.0 * xd * A.transpose() * B.transpose();
    pa::Matrix<double> y = f.x * W.transpose();
    y.rowwise() += f.bias();
    for (pa::Index r = 0; r < y.rows(); ++r)
        y.row(r) += ((g.array() - 1.0) * h.row(r).array() + g.array() * low.row(r).array()).matrix();
    return y;
}

Eigen::RowVectorXd dora_norms(DoraFixture& f) {
    auto& branch = f.layer.branch();
    pa::Matrix<double> const V = f.weight() + 4.0 * branch.b().values().map() * branch.a().values().map();
    return V.rowwise().norm().transpose();
}

pa::Matrix<double> dropped(DoraFixture& f, double p) {
    pa::cpu::Context ctx;
    pa::Matrix<double> xd(f.x.rows(), f.x.cols()), mask(f.x.rows(), f.x.cols());
    pa::Rng rng(99);
    pa::cpu::dropout_forward(ctx, pa::view(std::as_const(f.x)), pa::view(xd), pa::view(mask), p, rng);
    return xd;
}

}  // namespace

TEST_CASE("DoRA linear: a fresh magnitude is the base weight's row norms, and the output is the base's",
          "[gradcheck][dora]") {
    DoraFixture f(0.0, false);
    f.store.initialise(f.ctx, 5);  // B = 0, m = ||W||
    Eigen::RowVectorXd const m = f.layer.branch().magnitude().values().map();
    CHECK((m - f.weight().rowwise().norm().transpose()).cwiseAbs().maxCoeff() < 1e-14);
    pa::Matrix<double> base = f.x * f.weight().transpose();
    base.rowwise() += f.bias();
    CHECK((f.forward() - base).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("DoRA linear without dropout: the formula, and the gradients of A, B, the magnitude and the input",
          "[gradcheck][dora]") {
    for (bool training : {false, true}) {
        INFO("training " << training);
        DoraFixture f(0.0, training);
        Eigen::RowVectorXd const n = dora_norms(f);
        CHECK((f.forward() - dora_formula(f, n, f.x)).cwiseAbs().maxCoeff() < 1e-12);
        pa::Matrix<double> dx;
        f.backward(dx);
        CHECK(f.layer.weight().grad == nullptr);  // frozen base
        auto formula_loss = [&] { return (dora_formula(f, n, f.x).array() * f.w.array()).sum(); };
        check_parameter(f.layer.branch().a(), formula_loss);
        check_parameter(f.layer.branch().b(), formula_loss);
        check_parameter(f.layer.branch().magnitude(), [&] { return f.loss(); });
        pa::testing::check_gradient(
            "dx", pa::testing::span_of(std::as_const(dx)), [&] { return f.loss(); }, pa::testing::span_of(f.x), 1e-8);
    }
}

TEST_CASE("DoRA linear with adapter dropout: PEFT's formula, and every gradient", "[gradcheck][dora][dropout]") {
    DoraFixture f(0.3, true);
    Eigen::RowVectorXd const n = dora_norms(f);
    pa::Matrix<double> const xd = dropped(f, 0.3);
    CHECK((xd - f.x).cwiseAbs().maxCoeff() > 1e-6);  // the mask drops something
    CHECK((f.forward() - dora_formula(f, n, xd)).cwiseAbs().maxCoeff() < 1e-12);
    pa::Matrix<double> dx;
    f.backward(dx);
    auto formula_loss = [&] { return (dora_formula(f, n, xd).array() * f.w.array()).sum(); };
    check_parameter(f.layer.branch().a(), formula_loss);
    check_parameter(f.layer.branch().b(), formula_loss);
    check_parameter(f.layer.branch().magnitude(), [&] { return f.loss(); });
    pa::testing::check_gradient(
        "dx", pa::testing::span_of(std::as_const(dx)), [&] { return f.loss(); }, pa::testing::span_of(f.x), 1e-8);
}

TEST_CASE("IA3 linear on an attention site scales the output: formula and gradients", "[gradcheck][ia3]") {
    Fixture<pa::IA3<pa::site::Value>, pa::site::Value> f(0.0, true);
    auto& l = f.layer.branch().scales();
    REQUIRE(l.rows == out);
    REQUIRE(l.cols == 1);
    pa::Matrix<double> z = f.x * f.weight().transpose();
    z.rowwise() += f.bias();
    Eigen::RowVectorXd const scale = l.values().map().transpose();
    pa::Matrix<double> const expected = z.array().rowwise() * scale.array();
    CHECK((f.forward() - expected).cwiseAbs().maxCoeff() < 1e-12);
    pa::Matrix<double> dx;
    f.backward(dx);
    CHECK(f.layer.weight().grad == nullptr);
    check_parameter(l, [&] { return f.loss(); });
    pa::testing::check_gradient(
        "dx", pa::testing::span_of(std::as_const(dx)), [&] { return f.loss(); }, pa::testing::span_of(f.x), 1e-8);
}

TEST_CASE("IA3 linear on a feed-forward site scales the input: formula and gradients", "[gradcheck][ia3]") {
    Fixture<pa::IA3<pa::site::MlpDown>, pa::site::MlpDown> f(0.0, true);
    auto& l = f.layer.branch().scales();
    REQUIRE(l.rows == 1);
    REQUIRE(l.cols == in);
    CHECK(l.saved_as_matrix);  // PEFT's (1, in)
    Eigen::RowVectorXd const scale = l.values().map();
    pa::Matrix<double> expected = (f.x.array().rowwise() * scale.array()).matrix() * f.weight().transpose();
    expected.rowwise() += f.bias();
    CHECK((f.forward() - expected).cwiseAbs().maxCoeff() < 1e-12);
    pa::Matrix<double> dx;
    f.backward(dx);
    check_parameter(l, [&] { return f.loss(); });
    pa::testing::check_gradient(
        "dx", pa::testing::span_of(std::as_const(dx)), [&] { return f.loss(); }, pa::testing::span_of(f.x), 1e-8);
}
